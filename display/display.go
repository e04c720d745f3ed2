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
)

var stateNames = [...]string{"ready", "code_accepted", "waiting_amount", "paying", "checking",
	"paid", "declined", "cancelled", "refund_progress", "refund_done", "offline",
	"device_fault", "bad_code", "busy", "starting"}

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
	Lang    Lang
}

// Display shows screens to the customer.
type Display interface {
	// Show renders s; it returns when the device has taken the bytes or ctx ends.
	Show(ctx context.Context, s Screen) error
	Close() error
}
