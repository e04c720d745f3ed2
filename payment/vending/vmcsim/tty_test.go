package vmcsim_test

import (
	"bufio"
	"path/filepath"
	"testing"
	"time"

	"github.com/kioskd/kioskd/payment/vending/vmcsim"
	"github.com/kioskd/kioskd/payment/vending/vmcsim/vmctest"
	"github.com/kioskd/kioskd/scanner/serial/serialtest"
)

// On an existing tty (a USB gadget's end in the QEMU suite; a pty's slave
// here) the machine answers on that tty, and leaves unplugging to the
// gadget.
func TestOnATTY(t *testing.T) {
	p := serialtest.New(t, "")
	kioskd, gadget := p.Master, p.Slave
	m := vmctest.NewMachine(t, vmcsim.Config{Link: filepath.Join(t.TempDir(), "ttyACM0"), TTY: gadget.Name()})
	if _, err := kioskd.Write([]byte("C,1\n")); err != nil {
		t.Fatal(err)
	}
	kioskd.SetReadDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(kioskd)
	var got []string
	for len(got) < 2 {
		l, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("after %q: %v", got, err)
		}
		got = append(got, l)
	}
	if got[0] != "c,STATUS,INACTIVE\n" || got[1] != "c,1\n" {
		t.Errorf("answers %q", got)
	}
	if err := m.Unplug(); err == nil {
		t.Error("Unplug on a tty succeeded")
	}
	if s := m.Snapshot(); !s.Linked || !s.SlaveOn {
		t.Errorf("snapshot %+v", s)
	}
}
