// Package loopback runs a simulator's Serve on a loopback port for a test,
// the way net/http/httptest runs a handler. The Smart Pay simulator's and
// the fiscal simulators' simtest packages both start theirs with it, so
// every simulator stops at the test's end, reports a failed Serve to the
// test, and can be taken down and brought back on the same address to
// play an outage.
package loopback
