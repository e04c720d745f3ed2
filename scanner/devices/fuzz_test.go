package devices

import "testing"

// FuzzUsagePage: any report descriptor bytes (sysfs hands over what the
// device sent) parse without panic.
func FuzzUsagePage(f *testing.F) {
	f.Add(posDescriptor)
	f.Add(kbdDescriptor)
	f.Add([]byte{0xfe, 0xff, 0x00})
	f.Add([]byte{0x07, 1, 2, 3})
	f.Fuzz(func(t *testing.T, desc []byte) {
		if page, ok := usagePage(desc); !ok && page != 0 {
			t.Fatalf("page %x without ok", page)
		}
	})
}
