// Package kiosktest plays the host application of a real kioskd for test
// beds that run the agent's binary: it writes the agent's devices.yaml,
// builds, starts, stops and kills the binary, sells through the local
// control API the way a kiosk's software does (amount, scan, hand-over,
// cancel, paid elsewhere, fiscal data, refunds), keeps a Ledger of what it
// did and was told, and checks the Smart Pay simulator's state against that
// Ledger (Check, Settled). Check is made of CheckService (the service's
// state alone), CheckSale (one sale) and CheckRefundRequests, so a host
// that keeps its own book checks by the same rules.
//
// Its users are the long soak (payment/soaktest), which runs the agent on
// the host, the power-cut bed (scanner/vmtest/cmd/powercut), which runs it
// in a QEMU guest and reaches the API over the guest's network, and the
// chaos test (payment/chaostest), which drives the agent with its own plans
// and book on this package's launcher, client and rules.
package kiosktest
