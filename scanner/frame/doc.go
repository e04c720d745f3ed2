// Package frame cuts the byte stream of a scanner into frames (one barcode
// each). It is shared by every driver that sees bytes rather than reports:
// scanner/serial, and the keyboard mode of scanner/hid and scanner/usb once
// key codes are decoded to bytes.
//
// A frame ends at a suffix (CR, LF or CRLF, which counts as one terminator),
// at once when a complete JSON object has arrived (the Smart Pay QR is JSON,
// so the payment starts without waiting for a suffix or a timeout, and a CR
// inside the payload cannot cut it), or after an inter-character gap as the
// fallback. What a scanner set-up adds around the data is stripped: all
// control characters (STX, ETX, TAB, GS…), an AIM symbology identifier
// (]Q1, ]E0…) at the start of a frame, the escapes of the AIM ECI protocol
// (a "\nnnnnn" designator, doubled backslashes) when the AIM id or a
// leading designator says the scanner sends them, and, only in front of a
// JSON object where they cannot be data, a vendor code id (Honeywell "s",
// Newland "Q", Zebra "P01", Datalogic "QR"; see lead.go). In auto framing,
// bytes between a JSON object's closing brace and the terminator that
// follows are the scanner's suffix and are dropped (without a terminator
// they are a frame of their own). A frame longer than MaxSize is
// discarded up to the next terminator, so an endless stream of garbage never
// grows memory: the Framer's buffer is allocated once.
//
// The Framer has no goroutine and no clock: the driver feeds it bytes with
// the time they arrived and asks for the Deadline of the current frame, so it
// is tested on recorded byte sequences without sleeping.
package frame
