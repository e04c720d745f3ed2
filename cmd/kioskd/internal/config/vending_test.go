package config

import (
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/kioskd/kioskd/payment/vending"
	"github.com/kioskd/kioskd/payment/vending/qibixx"
)

const vendingSection = `vending:
  driver: qibixx
  port: /dev/ttyACM1
  address: 0x60
  catalogue:
    - item: 11
      name: Вода
`

// The example for vending machines passes, and documents every key the
// vending drivers declare.
func TestVendingExample(t *testing.T) {
	c, err := Load("../../../../udev/devices.vending.yaml")
	if err != nil {
		t.Fatalf("the example devices.vending.yaml must pass validation:\n%v", err)
	}
	if c.Kassa.Handover != HandoverVending || c.Vending.Driver != qibixx.DriverName {
		t.Errorf("kassa %+v, vending driver %q", c.Kassa, c.Vending.Driver)
	}
	if q := c.Vending.Settings.(qibixx.Config); q.Catalogue[11].Price != 8000 || q.Address != qibixx.AddressCashless1 {
		t.Errorf("vending %+v", q)
	}
	data, err := os.ReadFile("../../../../udev/devices.vending.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range vending.Drivers.Names() {
		keys, _ := vending.Drivers.Keys(name)
		for _, k := range keys {
			if !strings.Contains(string(data), "\n  "+k+":") {
				t.Errorf("vending driver %s: key %s is not in the example devices.vending.yaml", name, k)
			}
		}
	}
}

// A vending section makes the machine's vend result the hand-over; the
// address is written in hex as MDB documents it.
func TestVendingDefaults(t *testing.T) {
	c, err := Parse("d.yaml", []byte(minimal+vendingSection))
	if err != nil {
		t.Fatal(err)
	}
	if c.Kassa.Handover != HandoverVending || c.PaymentConfig().Handover != HandoverVending {
		t.Errorf("handover %q", c.Kassa.Handover)
	}
	q := c.Vending.Settings.(qibixx.Config)
	if q.Port != "/dev/ttyACM1" || q.Address != qibixx.AddressCashless2 || q.Catalogue[11].Name != "Вода" || q.VendTimeout != qibixx.DefaultConfig().VendTimeout {
		t.Errorf("vending %+v", q)
	}
	if c, err := Parse("d.yaml", []byte(minimal)); err != nil || c.Vending.Settings != nil {
		t.Errorf("without the section: %v, %+v", err, c.Vending)
	}
}

// The kassa and the vending section must agree, and the adapter's port is
// no one else's: each problem names its line.
func TestVendingProblems(t *testing.T) {
	for _, tc := range []struct{ name, src, want string }{
		{"handover vending without the section", strings.Replace(minimal, "id: k1", "id: k1\n  handover: vending", 1),
			"d.yaml:3: kassa.handover: vending needs a vending section: the machine's MDB adapter, whose vend results are the hand-over (see the example devices.vending.yaml: udev/ in the sources, /usr/share/doc/kioskd/examples/ when installed)"},
		{"the section with handover host", strings.Replace(minimal, "id: k1", "id: k1\n  handover: host", 1) + vendingSection,
			"d.yaml:3: kassa.handover: host does not go with the vending section: the machine's vend result is the hand-over; write vending or leave handover out"},
		{"the section with a fixed amount", strings.Replace(minimal, "id: k1", "id: k1\n  fixed_amount: 5000", 1) + vendingSection,
			"d.yaml:3: kassa.fixed_amount: the vending machine asks the price of each vend: remove fixed_amount"},
		{"the scanner's port", minimal + strings.Replace(vendingSection, "/dev/ttyACM1", "/dev/ttyACM0", 1),
			"d.yaml:14: vending.port: port /dev/ttyACM0 is already used by scanners[0].port"},
		{"a driver's rule", minimal + strings.Replace(vendingSection, "0x60", "0x61", 1),
			"d.yaml:15: vending.address: 0x61: want 0x10 (cashless #1) or 0x60 (cashless #2)"},
		{"no driver", minimal + "vending:\n  port: /dev/ttyACM1\n",
			"d.yaml:13: vending.driver: required: qibixx"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("d.yaml", []byte(tc.src))
			var ce *Error
			if !errors.As(err, &ce) || ce.Error() != tc.want {
				t.Errorf("problems:\n%v\nwant:\n%s", err, tc.want)
			}
		})
	}
}
