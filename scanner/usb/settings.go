package usb

import (
	"github.com/kioskd/kioskd/scanner"
	"github.com/kioskd/kioskd/scanner/hidreport"
	"github.com/kioskd/kioskd/scanner/settings"
)

func init() { settings.Register(scanner.Drivers, "usb", Settings{hidreport.Defaults}) }

// Settings is a usb scanner's devices.yaml entry: the keys, defaults and
// rules of hidreport.Settings, read through libusb. A build without cgo
// still decodes it, so a configuration problem is shown before the
// missing support (see nocgo.go).
type Settings struct{ hidreport.Settings }

// Opens is the USB device, for `kioskd udev-rules` and `kioskd check`.
func (s Settings) Opens() settings.Resource { return s.Settings.Opens(settings.USBDevice) }

var _ scanner.Settings = Settings{}
