//go:build linux

package main

import (
	"fmt"
	"os"
	"path/filepath"
	"time"
)

const gadgetRoot = "/sys/kernel/config/usb_gadget"

// honeywellPOSDescriptor is a HID POS (usage page 0x8C) input report of 64
// bytes with report id 2: id, then 63 data bytes, as Honeywell's layout.
var honeywellPOSDescriptor = []byte{0x05, 0x8c, 0x09, 0x02, 0xa1, 0x01, 0x09, 0x12, 0xa1, 0x02, 0x85, 0x02,
	0x15, 0x00, 0x26, 0xff, 0x00, 0x75, 0x08, 0x95, 0x3f, 0x09, 0xfe, 0x81, 0x02, 0xc0, 0xc0}

// gadget is a configfs USB gadget bound to one dummy_hcd UDC; unbinding and
// binding it is an unplug and a replug as the host side sees it.
type gadget struct {
	name, udc string
}

func writeFile(path, s string) error {
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		return fmt.Errorf("gadget: %w", err)
	}
	return nil
}

func newGadget(name, udc string, vid, pid uint16, product, serial string) (*gadget, error) {
	d := filepath.Join(gadgetRoot, name)
	for _, p := range []string{d, d + "/strings/0x409", d + "/configs/c.1/strings/0x409"} {
		if err := os.MkdirAll(p, 0o755); err != nil {
			return nil, fmt.Errorf("gadget %s: %w", name, err)
		}
	}
	for f, v := range map[string]string{
		"idVendor": fmt.Sprintf("0x%04x", vid), "idProduct": fmt.Sprintf("0x%04x", pid),
		"bcdUSB": "0x0200", "bcdDevice": "0x0100",
		"strings/0x409/manufacturer": "Honeywell", "strings/0x409/product": product,
		"strings/0x409/serialnumber": serial, "configs/c.1/strings/0x409/configuration": "scanner",
		"configs/c.1/MaxPower": "250",
	} {
		if err := writeFile(filepath.Join(d, f), v); err != nil {
			return nil, err
		}
	}
	return &gadget{name: name, udc: udc}, nil
}

// addFunction creates functions/<fn> with attrs and links it into the config.
func (g *gadget) addFunction(fn string, attrs map[string][]byte) error {
	d := filepath.Join(gadgetRoot, g.name)
	fd := filepath.Join(d, "functions", fn)
	if err := os.MkdirAll(fd, 0o755); err != nil {
		return fmt.Errorf("gadget %s: %w", g.name, err)
	}
	for f, v := range attrs {
		if err := os.WriteFile(filepath.Join(fd, f), v, 0o644); err != nil {
			return fmt.Errorf("gadget %s %s: %w", g.name, f, err)
		}
	}
	if err := os.Symlink(fd, filepath.Join(d, "configs/c.1", fn)); err != nil && !os.IsExist(err) {
		return fmt.Errorf("gadget %s: %w", g.name, err)
	}
	return nil
}

// bind plugs the gadget in; unbind pulls it out.
func (g *gadget) bind() error {
	return writeFile(filepath.Join(gadgetRoot, g.name, "UDC"), g.udc)
}

func (g *gadget) unbind() error {
	return writeFile(filepath.Join(gadgetRoot, g.name, "UDC"), "\n")
}

// posReports splits data into Honeywell 64-byte HID POS reports: id 0x02,
// count of data bytes, AIM id "]Q1" at 2–4 (in every report), up to 56 data
// bytes from byte 5, vendor symbology 's' at 61 and the "more follows" flag
// in bit 0 of byte 63.
func posReports(data []byte) [][]byte {
	var out [][]byte
	for first := true; first || len(data) > 0; first = false {
		r := make([]byte, 64)
		r[0] = 0x02
		copy(r[2:5], "]Q1")
		n := min(len(data), 56)
		copy(r[5:], data[:n])
		r[1] = byte(n)
		r[61] = 's'
		data = data[n:]
		if len(data) > 0 {
			r[63] = 1
		}
		out = append(out, r)
	}
	return out
}

// writeReports writes reports to /dev/hidgN; the write returns once the
// host's interrupt IN transfer has taken the previous report.
func writeReports(dev string, reports [][]byte, d time.Duration) error {
	f, err := os.OpenFile(dev, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	f.SetWriteDeadline(time.Now().Add(d))
	for i, r := range reports {
		if _, err := f.Write(r); err != nil {
			return fmt.Errorf("report %d/%d: %w", i+1, len(reports), err)
		}
	}
	return nil
}
