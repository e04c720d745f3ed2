// Package proctest drives the process (or the command) under a test: the
// crash suite's re-executed agent (payment/crashtest), the real kioskd
// binary of cmd/kioskd's tests, the smartpay-sim commands and the vending
// machine's REPL; the chaos test (payment/chaostest, which runs kioskd with
// payment/kiosktest) kills at a call with its Trap.
//
// Process runs a process and kills it with SIGKILL or stops it with
// SIGTERM; Trap, a simulator middleware, kills it when the simulator
// receives a chosen call: before the call takes effect, or after it did
// and before its answer leaves, so the answer is lost. Output collects what
// it writes, from any goroutine, and lets the test wait for a line.
package proctest
