// Package atol is the fiscal backend for the ATOL driver v10 web server
// («Веб-сервер ККТ» / «Web Requests»): a local HTTP service, by default at
// http://127.0.0.1:16732/api/v2, that queues JSON tasks for the ККТ.
//
// A task is posted with a caller-chosen uuid (POST /requests) and its
// result polled (GET /requests/{uuid}); the server refuses a second task
// with the same uuid, which is what makes a receipt idempotent: a retry
// after a lost answer or a crash posts the same uuid, gets "exists", and
// reads the result of the one task. The uuid is fiscal.AttemptID of the
// receipt's ID.
//
// Facts are marked where they are stated: [V] verified in a source (the
// driver's own JSON task scripts and libfptr constants, OpenPapyrus
// atoldrv.cpp, public clients of the web server), [I] inferred.
package atol
