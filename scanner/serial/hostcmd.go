package serial

import (
	"errors"
	"fmt"

	"github.com/kioskd/kioskd/scanner/settings"
)

// HostCommands is the command set a scanner understands from the host.
type HostCommands int

// Supported command sets.
const (
	NoHostCommands HostCommands = iota // the scanner is only read
	Honeywell                          // SYN-prefixed commands: beep 16 07 0D, trigger 16 54 0D / 16 55 0D
	Datalogic                          // single bytes: E enable, D disable, B beep
	ZebraSSI                           // Simple Serial Interface packets
)

var hostNames = [...]string{"none", "honeywell", "datalogic", "zebra-ssi"}

// String returns the devices.yaml name.
func (h HostCommands) String() string { return settings.NameOf(hostNames[:], h) }

// Host command operations.
type op int

const (
	opGoodBeep op = iota
	opBadBeep
	opEnable
	opDisable
)

// Zebra SSI opcodes and the host's source byte.
const (
	ssiSourceHost   = 0x04
	ssiBeep         = 0xE6
	ssiScanEnable   = 0xE9
	ssiScanDisable  = 0xEA
	ssiBeepGood     = 0x00 // one short high beep
	ssiBeepBad      = 0x06 // two short low beeps
	ssiStatusFirst  = 0x00 // first transmission, temporary change
	ssiAck, ssiNak  = 0xD0, 0xD1
	ssiSourceDecode = 0x00
)

// command returns the bytes that perform o in command set h, or an error
// wrapping errors.ErrUnsupported.
func (h HostCommands) command(o op) ([]byte, error) {
	switch h {
	case Honeywell:
		switch o {
		case opGoodBeep:
			return []byte{0x16, 0x07, 0x0D}, nil
		case opEnable:
			return []byte{0x16, 0x54, 0x0D}, nil
		case opDisable:
			return []byte{0x16, 0x55, 0x0D}, nil
		}
	case Datalogic:
		switch o {
		case opGoodBeep:
			return []byte{'B'}, nil
		case opEnable:
			return []byte{'E'}, nil
		case opDisable:
			return []byte{'D'}, nil
		}
	case ZebraSSI:
		switch o {
		case opGoodBeep:
			return SSIPacket(ssiBeep, ssiBeepGood), nil
		case opBadBeep:
			return SSIPacket(ssiBeep, ssiBeepBad), nil
		case opEnable:
			return SSIPacket(ssiScanEnable), nil
		case opDisable:
			return SSIPacket(ssiScanDisable), nil
		}
	}
	// Honeywell and Datalogic serial command sets have no error beep we
	// could confirm; say so rather than make one up.
	return nil, fmt.Errorf("scanner/serial: host commands %q: %w", h, errors.ErrUnsupported)
}

// SSIPacket builds a Zebra SSI packet sent by the host:
// [len][opcode][source 04][status][data…][checksum hi][checksum lo], where
// len counts the bytes before the checksum and the checksum is the 16-bit
// two's complement of their sum.
func SSIPacket(opcode byte, data ...byte) []byte {
	p := make([]byte, 0, 4+len(data)+2)
	p = append(p, byte(4+len(data)), opcode, ssiSourceHost, ssiStatusFirst)
	p = append(p, data...)
	ck := ssiChecksum(p)
	return append(p, byte(ck>>8), byte(ck))
}

func ssiChecksum(p []byte) uint16 {
	var sum uint16
	for _, b := range p {
		sum += uint16(b)
	}
	return -sum // 0x10000 − sum
}

// ssiFilter removes the decoder's ACK/NAK packets from a Zebra SSI byte
// stream, so the answer to a beep is not framed as a barcode. The packets
// start with a length byte (4 or 5) and opcode D0/D1 from source 00, which
// no printable barcode contains. A partial packet at the end of a read is
// held back until the next read decides it.
type ssiFilter struct {
	held [6]byte
	n    int
}

// filter returns p without ACK/NAK packets, reusing p's storage for the
// result when nothing is held back; held bytes that turn out not to be a
// packet are returned in front.
func (f *ssiFilter) filter(p []byte) []byte {
	out := p[:0:0]
	if f.n == 0 {
		out = p[:0]
	}
	in := p
	if f.n > 0 {
		in = append(f.held[:f.n:f.n], p...)
		f.n = 0
	}
	for i := 0; i < len(in); {
		switch m := ssiMatch(in[i:]); {
		case m > 0:
			i += m // a whole packet: drop it
		case m < 0:
			f.n = copy(f.held[:], in[i:]) // could be a packet: wait for more
			return out
		default:
			out = append(out, in[i])
			i++
		}
	}
	return out
}

// ssiMatch returns the length of the ACK/NAK packet at the start of b, -1
// when b is a proper prefix of one, and 0 when it is not one.
func ssiMatch(b []byte) int {
	if b[0] != 4 && b[0] != 5 {
		return 0
	}
	switch {
	case len(b) < 2:
		return -1
	case b[1] != ssiAck && b[1] != ssiNak:
		return 0
	case len(b) < 3:
		return -1
	case b[2] != ssiSourceDecode:
		return 0
	}
	n := int(b[0]) + 2
	if len(b) < n {
		return -1
	}
	ck := ssiChecksum(b[:n-2])
	if b[n-2] != byte(ck>>8) || b[n-1] != byte(ck) {
		return 0
	}
	return n
}
