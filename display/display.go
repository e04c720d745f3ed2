// Package display defines what the customer sees: a Screen value shown by one
// or more Display drivers (display/vfd, display/web, display/term, the log).
package display

import "context"

// State is what the customer display is telling the customer.
type State int

// The screens the customer can see. Keep in sync with State.String.
const (
	Ready          State = iota // idle: show your QR code
	CodeAccepted                // QR committed with the service
	WaitingAmount               // waiting for the host to send the amount
	Paying                      // payment released, amount shown
	Checking                    // outcome not known yet (timeout, lost answer)
	Paid                        // payment succeeded
	Declined                    // payment failed; Message has the service's text
	Cancelled                   // sale cancelled
	RefundProgress              // refund requested, waiting for its outcome
	RefundDone                  // refund finished
	Offline                     // service unreachable
	DeviceFault                 // a device the kiosk needs is missing
	BadCode                     // scanned code is not a payment QR
	Busy                        // scan ignored: a payment is in progress
	Starting                    // the agent is starting: no payment yet, nothing wrong either
	Receipt                     // the fiscal receipt of a paid sale or a refund: its QR code
	Selected                    // vending: a product was selected; show the QR to pay its price
	VendFailed                  // vending: paid, but the machine did not dispense; the payment is returned
)

var stateNames = [...]string{"ready", "code_accepted", "waiting_amount", "paying", "checking",
	"paid", "declined", "cancelled", "refund_progress", "refund_done", "offline",
	"device_fault", "bad_code", "busy", "starting", "receipt", "selected", "vend_failed"}

func (s State) String() string {
	if s < 0 || int(s) >= len(stateNames) {
		return "unknown"
	}
	return stateNames[s]
}

// Lang is the language of customer-facing texts.
type Lang string

// Supported languages; Russian is the default.
const (
	Russian Lang = "ru"
	English Lang = "en"
)

// Screen is one full picture for the customer display. It is a value: drivers
// render it from scratch, so a lost update is repaired by the next one.
type Screen struct {
	State   State
	Amount  int64  // kopecks; 0 when not known
	Message string // extra text from the service (decline reason) or the agent
	// Product is what the customer selected on a vending machine; when set
	// it is the title and the state's title becomes the detail line.
	Product string
	Lang    Lang
	Receipt FiscalReceipt // the Receipt screen's fiscal receipt; zero on the others
}

// FiscalReceipt is a fiscal receipt (54-ФЗ) as the customer display shows it: the
// web page and the terminal draw QR as a QR code, which the customer's
// phone scans to fetch the receipt from the tax service; a pole display,
// which cannot draw, shows the FD number and the fiscal sign, with which
// the receipt can be found by hand.
type FiscalReceipt struct {
	QR         string // t=…&s=…&fn=…&i=…&fp=…&n=1 (n=2 for a return)
	FDNumber   int64  // номер фискального документа (ФД)
	FiscalSign string // фискальный признак документа (ФП)
	Return     bool   // the receipt of a refund (возврат прихода)
}

// Display shows screens to the customer.
type Display interface {
	// Show renders s; it returns when the device has taken the bytes or ctx ends.
	Show(ctx context.Context, s Screen) error
	Close() error
}
