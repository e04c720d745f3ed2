// Package killtest kills the process under a crash test at a chosen
// moment: the crash suite's re-executed agent (payment/crashtest), the real
// kioskd binary of the chaos test (payment/chaostest) and of the vending
// crash test (cmd/kioskd). Process runs the process, kills it with SIGKILL
// or stops it with SIGTERM; Trap, a simulator middleware, kills it when the
// simulator receives a chosen call: before the call takes effect, or after
// it did and before its answer leaves, so the answer is lost.
package killtest
