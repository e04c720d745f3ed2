// Package vending holds what kioskd needs to be the cashless payment device
// of a vending machine, independent of how it is wired to the machine.
//
// A vending machine's controller (the VMC) knows the price of the product a
// customer selected and whether the product really dropped; it talks MDB to
// its payment devices. kioskd sits on the bus as a cashless device through an
// adapter (package qibixx drives the Qibixx MDB Pi HAT / MDB-USB). The
// conversation of one vend, as the payment flow sees it:
//
//	VendRequest{Amount, Item}   the customer selected a product; the VMC waits
//	                            (for at most its own vend timeout) for
//	Approve(id, amount)         the money is there: the VMC dispenses and answers
//	  VendSuccess               the product was dispensed: settle
//	  VendFailure               it was not (empty spiral, jam): give the money back
//	Deny(id)                    no payment: the VMC gives up the selection
//	SessionCancelled            the VMC gave up first (customer cancel, its timeout)
//
// A Machine delivers these as typed Events and never turns a line it does not
// understand into a vend result: an approved vend whose result can no longer
// come (the adapter was unplugged or reset) ends in VendResultUnknown, and
// the one inferred success is MDB's own rule that a VMC reset between Vend
// Approved and Vend Success counts as success (VendSuccess.ByVMCReset).
//
// Money is int64 kopecks throughout, as in package payment.
package vending
