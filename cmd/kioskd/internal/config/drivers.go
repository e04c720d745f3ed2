package config

// The drivers devices.yaml can name: each registers its settings schema
// with its kind's registry, so linking one here is what makes its keys
// known to Parse.
import (
	_ "github.com/kioskd/kioskd/display/logdisplay"
	_ "github.com/kioskd/kioskd/display/term"
	_ "github.com/kioskd/kioskd/display/vfd"
	_ "github.com/kioskd/kioskd/display/web"
	_ "github.com/kioskd/kioskd/scanner/hid"
	_ "github.com/kioskd/kioskd/scanner/serial"
	_ "github.com/kioskd/kioskd/scanner/usb"
)
