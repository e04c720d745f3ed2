package qibixx

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/kioskd/kioskd/payment/vending"
)

func TestCommands(t *testing.T) {
	must := func(c Command, err error) Command {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	for _, c := range []struct {
		got  Command
		want string
	}{
		{CmdEnable(true), "C,1\n"},
		{CmdEnable(false), "C,0\n"},
		{must(CmdSetConf("mdb-address", "0x60")), "C,SETCONF,mdb-address=0x60\n"},
		{must(CmdStart("0")), "C,START,0\n"},
		{must(CmdVend("1.50")), "C,VEND,1.50\n"},
		{CmdStop(), "C,STOP\n"},
		{must(CmdDisplay("Scan the QR code")), "C,DISPLAY,Scan the QR code\n"},
		{must(CmdDisplay(strings.Repeat("x", MaxDisplayText))), "C,DISPLAY," + strings.Repeat("x", 32) + "\n"},
		{CmdVersion(), "V\n"},
	} {
		if string(c.got.Bytes()) != c.want {
			t.Errorf("got %q, want %q", c.got.Bytes(), c.want)
		}
	}
	for name, err := range map[string]error{
		"setconf comma":    second(CmdSetConf("a,b", "1")),
		"setconf newline":  second(CmdSetConf("a", "1\nC,1")),
		"setconf empty":    second(CmdSetConf("a", "")),
		"vend negative":    second(CmdVend("-1")),
		"vend garbage":     second(CmdVend("1.5x")),
		"start empty":      second(CmdStart("")),
		"display long":     second(CmdDisplay(strings.Repeat("x", 33))),
		"display newline":  second(CmdDisplay("a\nC,VEND,1")),
		"display cyrillic": second(CmdDisplay("Оплатите")),
	} {
		if err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func second(_ Command, err error) error { return err }

func TestConfigSetconf(t *testing.T) {
	c := DefaultConfig()
	c.Port = "/dev/ttyACM0"
	c.Address = AddressCashless2
	c.VendTimeout = 45 * time.Second
	var got []string
	for _, cmd := range c.setconf() {
		got = append(got, string(cmd))
	}
	want := []string{
		"C,SETCONF,mdb-address=0x60",
		"C,SETCONF,mdb-currency-code=0x1643",
		"C,SETCONF,mdb-scale-factor=1",
		"C,SETCONF,mdb-decimal-places=2",
		"C,SETCONF,mdb-always-idle=1",
		"C,SETCONF,mdb-timeout-vend=45",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("setconf = %q\nwant %q", got, want)
	}
}

func TestConfigValidate(t *testing.T) {
	ok := DefaultConfig()
	ok.Port = "/dev/serial/by-id/usb-Qibixx_MDB-if00"
	ok.Catalogue = vending.Catalogue{1: {Name: "Вода 0,5 л", Price: 8000}, 2: {Name: "Кофе"}}
	if err := ok.Validate(); err != nil {
		t.Fatalf("valid config: %v", err)
	}
	for field, mutate := range map[string]func(*Config){
		"port":                func(c *Config) { c.Port = "ttyACM0" },
		"address":             func(c *Config) { c.Address = 0x11 },
		"scale_factor":        func(c *Config) { c.ScaleFactor = 0 },
		"decimal_places":      func(c *Config) { c.DecimalPlaces = 4 },
		"currency":            func(c *Config) { c.Currency = "EUR" },
		"vend_timeout":        func(c *Config) { c.VendTimeout = 1500 * time.Millisecond },
		"catalogue.70000":     func(c *Config) { c.Catalogue = vending.Catalogue{70000: {Name: "x"}} },
		"catalogue.3.name":    func(c *Config) { c.Catalogue = vending.Catalogue{3: {Name: "a\nb"}} },
		"catalogue.4.price":   func(c *Config) { c.Catalogue = vending.Catalogue{4: {Name: "x", Price: -5}} },
		"catalogue.5.price":   func(c *Config) { c.ScaleFactor = 5; c.Catalogue = vending.Catalogue{5: {Name: "x", Price: 152}} },
		"catalogue.6.name":    func(c *Config) { c.Catalogue = vending.Catalogue{6: {}} },
		"vend_timeout (long)": func(c *Config) { c.VendTimeout = 300 * time.Second },
		"always_idle":         func(c *Config) { c.AlwaysIdle = false },
	} {
		c := ok
		mutate(&c)
		err := c.Validate()
		var ce *ConfigError
		want, _, _ := strings.Cut(field, " ")
		if !errors.As(err, &ce) || ce.Field != want || !errors.Is(err, ErrConfig) {
			t.Errorf("%s: Validate = %v; want a ConfigError for %s", field, err, want)
			continue
		}
		if !strings.HasPrefix(err.Error(), "qibixx: vending."+want+": ") {
			t.Errorf("%s: message %q does not name the field", field, err)
		}
	}
}
