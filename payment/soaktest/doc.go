// Package soaktest is the long soak of the payment flow through the real
// kioskd binary: thousands of sales over the local API and a serial scanner
// (a pty) against the Smart Pay simulator, with the agent's resident memory,
// goroutines, open files and journal size sampled from its /metrics at the
// start, periodically and at the end. The journal runs with a short
// retention, so compaction must keep it bounded.
//
// It lives beside payment/crashtest because it tests the same thing from
// the other side: crashtest kills the flow at every step, the soak lets it
// run long enough to show growth. The short default (a few hundred sales)
// runs with the suite; the full run is
//
//	go test ./payment/soaktest -run Soak -timeout 6h -v -args -soak.sales=10000 -soak.out=DIR
//
// (about 2 h 15 min on a 2-core machine: the status budget allows about one paid sale a
// second) and writes soak.csv and soak.txt, the table, into DIR.
package soaktest
