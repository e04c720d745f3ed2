package settings_test

import (
	"fmt"
	"time"

	"github.com/kioskd/kioskd/scanner/settings"
)

// Adapter is what a kind of device (here: a vending machine's cashless
// adapter) asks of its drivers' settings; scanner.Settings and
// display.Settings play this part for scanners and displays.
type Adapter interface{ Driver() string }

// Vending is the kind's registry: one "vending:" section whose "driver" key
// picks the driver.
var Vending = settings.NewRegistry[Adapter]("vending adapter", "driver", false)

// Qibixx is one driver's own settings type. Its keys, defaults and rules
// are declared here, next to the driver's code.
type Qibixx struct {
	Port        settings.Port // port (or vid/pid: /dev/kiosk/<name>)
	Address     int           // MDB cashless device 1 (0x10) or 2 (0x60)
	VendTimeout time.Duration
	Catalogue   map[int]string // item number → product name
}

// Fields binds each key to the field it fills.
func (q *Qibixx) Fields() []settings.Field {
	return append(q.Port.Fields(),
		settings.Int("address", &q.Address, 1, 2),
		settings.DurationUpTo("vend_timeout", &q.VendTimeout, 5*time.Minute),
		settings.List("catalogue", func(d *settings.Decoder, n *settings.Node, path string) {
			var it item
			d.Decode(n, path, n.Line, &it)
			if q.Catalogue == nil {
				q.Catalogue = map[int]string{}
			}
			q.Catalogue[it.Number] = it.Name
		}),
	)
}

// Check runs after every key: rules between keys.
func (q *Qibixx) Check(sec *settings.Section) { q.Port.Check(sec) }

// Driver makes *Qibixx an Adapter.
func (Qibixx) Driver() string { return "qibixx" }

type item struct {
	Number int
	Name   string
}

func (it *item) Fields() []settings.Field {
	return []settings.Field{
		settings.Int("item", &it.Number, 0, 65535).Required("required: the item number the machine sends"),
		settings.String("name", &it.Name).Required("required: the product's name on the receipt"),
	}
}

// A driver package registers its settings in init; the configuration
// loader declares the section once, as a top-level field:
//
//	settings.One("vending", Vending, &c.Vending)
//
// and Decode (through that field) reads the section the user wrote.
func Example() {
	settings.Register(Vending, "qibixx", Qibixx{Address: 1, VendTimeout: 60 * time.Second})

	// vending:
	//   driver: qibixx
	//   port: /dev/ttyACM0
	//   adress: 2
	//   vend_timeout: 90s
	var d settings.Decoder
	e, ok := Vending.Decode(&d, settings.Flat("driver", "qibixx", "port", "/dev/ttyACM0", "adress", "2", "vend_timeout", "90s"), "vending")
	q := e.Settings.(Qibixx)
	fmt.Println(ok, e.Driver, q.Port.Path, q.Address, q.VendTimeout)
	for _, p := range d.Problems() {
		fmt.Printf("line %d: %s: %s\n", p.Line, p.Path, p.Msg)
	}
	// Output:
	// true qibixx /dev/ttyACM0 1 1m30s
	// line 3: vending.adress: unknown key (did you mean address?)
}
