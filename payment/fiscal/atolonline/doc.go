// Package atolonline is the fiscal backend for ATOL Online v4, a cloud
// kassa: a token from login and password (POST /getToken), a receipt
// posted with the caller's external_id (POST /{group}/sell or
// /{group}/sell_refund), then its report polled (GET /{group}/report/
// {uuid}) until it is done or failed.
//
// The cloud refuses a second document with the same external_id and names
// the first one's uuid (error 33), which makes a receipt idempotent: a
// retry after a lost answer or a crash posts the same external_id and reads
// the report of the one document. The external_id is fiscal.AttemptID of
// the receipt's ID. The cloud keeps its own shifts.
//
// Facts are marked: [V] verified in public clients (ili/atol-online,
// the atol Ruby gem, SSitdikov/ATOL), [I] inferred.
package atolonline
