// Package hidreport decodes the two kinds of input report a USB barcode
// scanner sends, without doing any I/O, so the decoders are tested and fuzzed
// on recorded reports:
//
//   - HID POS (usage page 0x8C): 64-byte "scanned data" reports in the
//     Honeywell layout (report id, count, AIM id, data, code id, flags) or the
//     Newland layout (no AIM field). A long QR code spans several reports,
//     joined until the "more follows" flag clears. See POS.
//   - Keyboard mode ("wedge"): 8-byte boot keyboard reports. The scanner
//     types the code key by key, so the decoder tracks key-down edges, Shift,
//     Caps Lock and AltGr and maps key codes through a per-device layout (us,
//     uk, de, fr). The result is a byte stream for the scanner/frame framer,
//     with Enter as CR. See Keyboard.
//
// Both decoders bound the memory they hold, whatever the input.
//
// Keyboard mode is slow (1 to 19 ms per key on real scanners, so a 400-byte
// QR takes 0.8 to 16 s) and depends on the layout; HID POS or serial mode
// delivers the same code in a few milliseconds.
package hidreport
