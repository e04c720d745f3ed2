// Package smartpay is the Smart Pay (KD Pay) kassa API client: the only place in
// kioskd that knows the wire contract (paths, JSON field names, status values,
// error codes). openapi.yaml in this directory describes the same contract; the
// tests validate every request and answer against it, so switching to the
// service's official description is a local change.
//
// The client keeps one authenticated mTLS connection warm so that a commit, the
// call on the scan path, never pays for a TLS handshake or a login. Errors tell
// the caller what it may conclude: *APIError for an answer with a service code,
// ErrOutcomeUnknown when the request may have taken effect, ErrUnavailable when
// it certainly did not reach the service.
//
// ParseQR validates a scanned payload locally, before any call.
//
// The simulator (package sim) implements the service side of the same contract.
package smartpay
