package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/kioskd/kioskd/payment/fiscal"
	"github.com/kioskd/kioskd/payment/fiscal/atol"
)

const fiscalAtol = `fiscal:
  provider: atol
  url: http://127.0.0.1:16732/api/v2
  login: kioskd
  password_file: kkt.password
  taxation: usn_income
  vat: none
  machine_number: VM-0042
  place: Холл, 1 этаж
  address: г. Москва, ул. Примерная, д. 1
  shift_margin: 2h
`

// The fiscal section is read through the providers' own settings, and
// Receipts opens the provider with its password read from a file next to
// devices.yaml; without the section the host sends the fiscal data.
func TestFiscalSection(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "kkt.password"), []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Parse(filepath.Join(dir, "devices.yaml"), []byte(minimal+fiscalAtol))
	if err != nil {
		t.Fatal(err)
	}
	s, ok := c.Fiscal.Settings.(atol.Settings)
	if !ok || c.Fiscal.Driver != "atol" || s.Login != "kioskd" || s.Item != fiscal.DefaultItem || s.Object != fiscal.ObjectCommodity {
		t.Fatalf("fiscal section: %+v", c.Fiscal)
	}
	rs, err := c.Receipts(zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := rs.Provider.(*atol.Client); !ok || rs.Taxation != fiscal.TaxUSNIncome || rs.VAT != fiscal.VATNone ||
		rs.MachineNumber != "VM-0042" || rs.Place != "Холл, 1 этаж" || rs.ShiftMargin != 2*time.Hour || rs.Wait != time.Minute {
		t.Fatalf("receipts: %+v", rs)
	}

	// A password file others may read is refused with the fix.
	os.Chmod(filepath.Join(dir, "kkt.password"), 0o644)
	if _, err := c.Receipts(zap.NewNop()); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("readable password file: %v", err)
	}

	none, err := Parse("d.yaml", []byte(minimal))
	if err != nil {
		t.Fatal(err)
	}
	if rs, err := none.Receipts(zap.NewNop()); err != nil || rs.Provider != nil || none.Fiscal.Driver != "none" {
		t.Fatalf("no fiscal section: %+v %v", rs, err)
	}
}

func TestFiscalProblems(t *testing.T) {
	cases := []struct{ name, src, want string }{
		{"taxation missing", strings.Replace(fiscalAtol, "  taxation: usn_income\n", "", 1),
			"d.yaml:13: fiscal.taxation: required: the seller's taxation system as registered for the ККТ"},
		{"unknown VAT", strings.Replace(fiscalAtol, "vat: none", "vat: 20", 1),
			`d.yaml:18: fiscal.vat: want one of none, vat0, vat5, vat7, vat10, vat20, vat22, vat105, vat107, vat110, vat120, vat122, got "20"`},
		{"a cloud's key", fiscalAtol + "  group: g1\n", "d.yaml:23: fiscal.group: not used by provider atol"},
		{"typo", fiscalAtol + "  adress: x\n", "d.yaml:23: fiscal.adress: unknown key (did you mean address?)"},
		{"login without password", strings.Replace(fiscalAtol, "  password_file: kkt.password\n", "", 1),
			"d.yaml:13: fiscal.password_file: login and password_file go together: set both or neither"},
		{"plain http over the network", strings.Replace(fiscalAtol, "127.0.0.1", "10.0.0.5", 1),
			`d.yaml:14: fiscal.url: URL "http://10.0.0.5:16732/api/v2": plain http only to a loopback address; use https`},
		{"unknown provider", "fiscal:\n  provider: shtrih\n", "d.yaml:13: fiscal.provider: want one of atol, atol-online, none, got \"shtrih\""},
		{"cloud without its keys", "fiscal:\n  provider: atol-online\n  taxation: osn\n  vat: vat20\n  machine_number: 1\n  place: p\n  address: a\n",
			"d.yaml:13: fiscal.group: required: the cloud kassa's group code"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("d.yaml", []byte(minimal+tc.src))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v\nwant a line %q", err, tc.want)
			}
		})
	}
}
