// Package hidtest makes the HID reports a barcode scanner sends (HID POS
// reports in the Honeywell and Newland layouts, boot keyboard reports) and
// plays them back, for the tests of the report decoders (hidreport) and of
// the two USB HID drivers (hid over hidapi, usb over libusb). It does not
// import hidreport, so hidreport's own tests can use it.
package hidtest
