package vfd

// commandSet is the wire language of one family of pole displays
// (see HARDWARE.md and LCDproc's serialPOS drivers).
type commandSet struct {
	// init resets the display into a known state; cp is the n of the code
	// page command, or -1 for none.
	init func(dst []byte, cp int) []byte
	// frame writes two encoded lines of exactly Width bytes each.
	frame func(dst, line1, line2 []byte) []byte
	// codepage tells whether the set has a code page command at all.
	codepage bool
}

var commandSets = map[string]commandSet{
	// Epson ESC/POS customer display (DM-D): both lines are rewritten in
	// place at fixed cursor positions instead of clearing first, so the
	// display never flickers blank between screens.
	"epson": {
		init: func(dst []byte, cp int) []byte {
			dst = append(dst, 0x1b, 0x40)       // ESC @ initialise
			dst = append(dst, 0x1f, 0x43, 0x00) // US C 0 cursor off
			if cp >= 0 {
				dst = append(dst, 0x1b, 0x74, byte(cp)) // ESC t n code page
			}
			return append(dst, 0x0c) // clear
		},
		frame: func(dst, l1, l2 []byte) []byte {
			dst = append(dst, 0x1f, 0x24, 1, 1) // US $ x y, 1-based
			dst = append(dst, l1...)
			dst = append(dst, 0x1f, 0x24, 1, 2)
			return append(dst, l2...)
		},
		codepage: true,
	},
	// CD5220: "ESC Q A/B text CR" writes a whole line. The code page
	// command differs between clones; ESC t n is the common one.
	"cd5220": {
		init: func(dst []byte, cp int) []byte {
			dst = append(dst, 0x1b, 0x40)
			if cp >= 0 {
				dst = append(dst, 0x1b, 0x74, byte(cp))
			}
			return dst
		},
		frame: func(dst, l1, l2 []byte) []byte {
			dst = append(dst, 0x1b, 0x51, 0x41)
			dst = append(dst, l1...)
			dst = append(dst, 0x0d, 0x1b, 0x51, 0x42)
			dst = append(dst, l2...)
			return append(dst, 0x0d)
		},
		codepage: true,
	},
	// AEDEX: "!#1 text CR" and "!#2 text CR"; no reset, no code page
	// command (the display's own setting applies).
	"aedex": {
		init: func(dst []byte, _ int) []byte { return dst },
		frame: func(dst, l1, l2 []byte) []byte {
			dst = append(dst, "!#1"...)
			dst = append(dst, l1...)
			dst = append(dst, 0x0d)
			dst = append(dst, "!#2"...)
			dst = append(dst, l2...)
			return append(dst, 0x0d)
		},
	},
	// Logic Controls / UTC: reset to normal (not scrolling) mode, cursor off,
	// then "DLE pos" moves to position 0..39.
	"logic": {
		init: func(dst []byte, _ int) []byte { return append(dst, 0x1f, 0x11, 0x14) },
		frame: func(dst, l1, l2 []byte) []byte {
			dst = append(dst, 0x10, 0x00)
			dst = append(dst, l1...)
			dst = append(dst, 0x10, Width)
			return append(dst, l2...)
		},
	},
}
