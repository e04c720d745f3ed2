// Package fiscalsim simulates the two fiscal backends over real HTTP: the
// ATOL driver v10 web server (Atol) and the ATOL Online v4 cloud (Online).
// Both front ends drive one virtual ККТ with its fiscal storage: fiscal
// document numbers that only grow, a shift with the 24 h limit on an
// injectable clock, and a fiscal sign derived from each receipt's content
// (Sign), so tests can check what a client forwards.
//
// Ids are idempotent as on the real services: the same uuid (web server)
// or external_id (cloud) submitted twice is one task and one document, and
// the second submission is counted. An admin API (AdminHandler) shows the
// state (receipts with their fiscal data, every task, the shift) and
// injects faults: HTTP errors, malformed JSON, dropped connections, lost
// answers, delays, receipts that stay in progress, ККТ error codes (an FN
// fault…), a result without the fiscal sign. simtest starts either on a
// loopback port for a test; cmd/smartpay-sim serves them as commands.
package fiscalsim
