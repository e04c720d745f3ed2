// Package fiscal issues 54-ФЗ fiscal receipts for kioskd's own sales
// through the operator's ККТ or cloud kassa (VENDING.md §4).
//
// The package owns the small Provider interface and the concepts every
// backend shares: a Receipt whose ID is fixed by the caller before the first
// attempt (so retries and crashes never make two receipts), the Result the
// ККТ confirmed (registration number, FN, FD number, fiscal sign, date), the
// receipt QR string the customer display shows, shifts with their 24 h limit,
// and one Error type whose Kind tells the caller what to do next.
//
// Backends live in subpackages: fiscal/atol (ATOL driver v10 web server, a
// local HTTP JSON task queue) and fiscal/atolonline (ATOL Online v4, a cloud
// kassa). fiscal/fiscalsim simulates both over real HTTP.
//
// Money is an int64 number of kopecks everywhere; backends format it as
// decimal rubles from the integers (Rubles), never through a float.
//
// A caller (the payment flow) uses it like this: make the Receipt with
// NewID and journal it before the first call; call Issue (it renews an
// expired shift once); on success forward the Result (Smart Pay's v1 and
// v2 fiscal records) and show Result.QR; on an error keep the receipt
// queued and act on KindOf: Unreachable, Pending and Malformed call again
// later with the same Receipt, Refused needs its cause fixed (the Code and
// Text say which; FN marks a fault of the fiscal storage), ShiftExpired is
// what Issue already handles. For providers that implement Shifts, run
// KeepShift on a timer so that a shift is renewed before its 24 h end.
package fiscal
