// Package payment is the payment flow of one kassa: a scanned QR is committed
// at once, the amount comes from the host or a fixed price, the payment is
// released and its status polled, the goods are handed over and the outcome
// confirmed to the service, refunds are run, and fiscal records are
// forwarded until accepted.
//
// # The parts, and the goroutine each runs on
//
// Flow (flow.go) composes the parts, starts their goroutines in one
// errgroup (Run) and routes the host's requests. It implements Host, the
// one interface every host adapter drives: payment/localapi (the kiosk
// application over HTTP) and, for vending machines, the MDB bridge.
//
//   - intake (intake.go), called on the scanner's or the API's goroutine:
//     the one door for scans. It drops duplicate reads (one window, one
//     event per dropped read), refuses what is not a payment QR without a
//     call, and offers the rest to the sale machine. Never blocks.
//   - sales (sale.go, sale_host.go, sale_wait.go), goroutine "sales": the
//     sale machine. One sale at a time; state.go's pure decide picks the next
//     State from a fact, and enter is the one place with side effects:
//     journal first, then the log line "A -> B" and the event. Host requests
//     reach the running sale as inputs on a channel; await is its one wait
//     (poll delay, deadline, inputs). The status poller (poll.go) it uses
//     learns when this kiosk's payments complete and checks densely there,
//     within a budget of one request a second over a long wait.
//   - refunds (refund.go, refund_state.go), one goroutine per refund, owned
//     by goroutine "refunds": the refund machine, in the same shape (pure
//     decideRefund, one enter, named outcomes in the journal).
//   - forwarder (fiscal.go), goroutine "fiscal": sends the fiscal queue, oldest
//     first, backing off while the service is away.
//   - receiptWriter (receipts.go), goroutine "receipts": with a fiscal
//     provider (Config.Receipts), issues the kassa's own receipts, oldest
//     first, under ids fixed in the journal write that ended their sale or
//     refund; queues each confirmed one's records for the forwarder in the
//     same write; keeps the ККТ's shift. FiscalHealth says what waits and why.
//   - Hub (events.go), no goroutine: hands every event to every subscriber
//     (displays, SSE, metrics) without blocking the publisher.
//   - diskGuard (diskguard.go), no goroutine: follows whether the journal
//     can be written, from every write's outcome; while it cannot, new
//     sales are refused (ErrJournal, a fault screen, a health reason) and
//     what is in flight waits with its next call unmade. Housekeeping's
//     probe says when the disk is back.
//   - warmer (flow.go), goroutine "warm": renews the service session when a
//     scanner starts receiving a frame. Flow.housekeep, goroutine
//     "housekeep": keeps the journal's id reservation ahead of the clock and
//     deletes finished records after the retention.
//
// Each part has its own lock, taken before the Hub's and never around a
// call to the service or another part.
//
// # Outcomes
//
// Only the service's refusal is final (verdict.go). A result that is not
// known (timeout, lost answer, 5xx) leads to Checking, never to Declined:
// only the service's status decides. Every state names the call it leads to,
// so the journal phase written on entering it is what recovery needs after
// a crash (see package journal). The one exception: a sale's first record is
// written alongside its commit (a commit moves no money), and both are done
// before the release; a power cut between them leaves at worst an
// unreleased commit, which the service expires.
//
// Timers run on Config.Clock, so tests move a fake clock instead of
// sleeping; service calls keep real deadlines (Timeouts.Call).
package payment
