// Package smartpay is the Smart Pay (KD Pay) kassa API client: the only place in
// kioskd that knows the wire contract (paths, JSON field names, status values,
// error codes). openapi.yaml in this directory describes the same contract; the
// tests validate every request and answer against it, so switching to the
// service's official description is a local change.
//
// The client keeps one authenticated mTLS connection warm so that a commit, the
// call on the scan path, never pays for a TLS handshake or a login; the
// keep-warm ping once a period also tells the Observer, which hears every call,
// whether the service answers while no sale runs.
//
// Every failed call has one Verdict, decided here only (VerdictOf): Refused
// (the service's "no", with the *APIError's code and message), Unknown (may
// have taken effect: ask the status or repeat with the same id), Unavailable
// (certainly not handled: safe to repeat) or Certificate (repeating cannot
// help). The client is the one retry layer: within the caller's context, the
// whole-call deadline, it repeats what the verdict and the method allow, each
// attempt bounded by Config.AttemptTimeout.
//
// ParseQR validates a scanned payload locally, before any call.
//
// The simulator (package sim) implements the service side of the same contract.
package smartpay
