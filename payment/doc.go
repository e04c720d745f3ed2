// Package payment is the payment flow of one kassa: a scanned QR is committed
// at once, the amount comes from the host or a fixed price, the payment is
// released and its status polled, the goods are handed over and the outcome
// confirmed to the service, and fiscal records are forwarded until accepted.
//
// One sale runs at a time. Its progress is a state machine: decide (a pure
// function) picks the next State from the current one and a fact (the answer
// of a call, a host request, a timer), and Flow.enter is the one place that
// writes the journal, logs "A -> B" and publishes an Event. The state also
// names the call to make next, so the journal phase written on entering it is
// exactly what recovery needs after a crash (see package journal).
//
// A result that is not known (timeout, lost answer, 5xx) leads to Checking,
// never to Declined: only the service's status decides.
//
// The status is polled by a poller (poll.go) that learns how long after the
// release this kiosk's payments complete and checks densely there, within a
// budget that keeps any wait of 20 s or more to at most one request a second.
package payment
