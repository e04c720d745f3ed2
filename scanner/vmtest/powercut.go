package vmtest

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/kioskd/kioskd/payment/journal"
)

// The power-cut bed: cmd/powercut on the host serves the guest's disk
// (Disk), the Smart Pay simulator and the sales; cmd/powerguest boots in
// the guest, mounts the disk, reports the journal it finds there and runs
// kioskd. The guest speaks to the host in console lines that start with
// GuestLinePrefix.

// GuestLinePrefix starts every line the power-cut guest means for the host.
const GuestLinePrefix = "POWERCUT "

// Guest paths and addresses, agreed by both sides.
const (
	GuestDataDir   = "/data"                  // the cut disk's mount point
	GuestKioskDir  = GuestDataDir + "/kioskd" // certificates, token, journal
	GuestAPIPort   = 8080                     // kioskd's api.listen on the guest's loopback
	GuestRelayPort = 8081                     // the guest's relay from 10.0.2.15 to the API
	GuestSimPort   = 8443                     // the guest's relay on loopback to the host's simulator
	GuestIP        = "10.0.2.15"              // QEMU user networking
	HostFromGuest  = "10.0.2.2"               // the host, as the guest reaches it
)

// JournalSale is a sale as the guest found it in the journal at boot.
type JournalSale struct {
	ID         string `json:"id"`
	Phase      string `json:"phase"`
	PurchaseID string `json:"purchase_id,omitempty"`
	Amount     int64  `json:"amount,omitempty"`
	Outcome    string `json:"outcome,omitempty"`
}

// JournalRefund is a refund as the guest found it in the journal at boot.
type JournalRefund struct {
	ID      string `json:"id"`
	Phase   string `json:"phase"`
	Outcome string `json:"outcome,omitempty"`
}

// BootReport is what the guest tells the host after mounting the disk and
// before starting kioskd: how the mount went and the journal it found.
type BootReport struct {
	MountMillis   int64           `json:"mount_ms"`
	MountError    string          `json:"mount_error,omitempty"`
	Journal       bool            `json:"journal"`                // the file exists
	OpenError     string          `json:"open_error,omitempty"`   // the journal package cannot open it
	CheckErrors   []string        `json:"check_errors,omitempty"` // bbolt's consistency check
	Sales         []JournalSale   `json:"sales,omitempty"`
	Refunds       []JournalRefund `json:"refunds,omitempty"`
	FiscalPending int             `json:"fiscal_pending"`
}

// Line renders r as the guest's console line.
func (r BootReport) Line() string {
	b, _ := json.Marshal(r)
	return GuestLinePrefix + "boot " + string(b)
}

// ParseGuestLine reads a guest console line: kind is "boot" (and r filled
// in), another word the guest used, or "" for a line not meant for the
// host.
func ParseGuestLine(line string) (kind, rest string, r BootReport, err error) {
	i := strings.Index(line, GuestLinePrefix)
	if i < 0 {
		return "", "", r, nil
	}
	kind, rest, _ = strings.Cut(line[i+len(GuestLinePrefix):], " ")
	if kind == "boot" {
		if err := json.Unmarshal([]byte(rest), &r); err != nil {
			return kind, rest, r, fmt.Errorf("vmtest: guest boot report %q: %w", rest, err)
		}
	}
	return kind, rest, r, nil
}

// Open lists the journal's sales that are not done.
func (r BootReport) Open() []JournalSale {
	var out []JournalSale
	for _, s := range r.Sales {
		if s.Phase != string(journal.SaleDone) {
			out = append(out, s)
		}
	}
	return out
}

// The cache probe's markers and where the guest writes them on the raw
// disk: written with O_DIRECT and no flush, flushed, left in the guest's
// page cache.
var (
	ProbeMarkers = [3]string{"PROBE-A-DIRECT-UNFLUSHED", "PROBE-B-FLUSHED", "PROBE-C-PAGE-CACHE"}
	ProbeOffsets = [3]int64{1 << 20, 2 << 20, 3 << 20}
)
