package qibixx

// MaxLineLen bounds one adapter line. The longest line the adapter sends, a
// vend request, is under 40 bytes; a longer run without a newline is noise,
// dropped up to the next newline, so memory stays bounded however much
// garbage arrives.
const MaxLineLen = 256

// splitter cuts the adapter's byte stream into lines ending in "\n" (a "\r"
// before it is dropped too: some firmware ends lines with "\r\n"). It has no
// goroutine and no clock; its buffer is allocated once.
type splitter struct {
	buf  [MaxLineLen]byte
	n    int
	over bool // dropping an over-long line up to the next "\n"
}

// feed splits p. It calls line with each complete, non-empty line (valid
// only during the call) and oversize once for each line that was too long.
func (s *splitter) feed(p []byte, line func([]byte), oversize func()) {
	for _, c := range p {
		switch {
		case c == '\n':
			n := s.n
			if n > 0 && s.buf[n-1] == '\r' {
				n--
			}
			if !s.over && n > 0 {
				line(s.buf[:n])
			}
			s.n, s.over = 0, false
		case s.over:
		case s.n == len(s.buf):
			s.n, s.over = 0, true
			oversize()
		default:
			s.buf[s.n] = c
			s.n++
		}
	}
}

// partial reports whether an unfinished line is buffered: lost if the link
// drops now (a truncated line).
func (s *splitter) partial() bool { return s.n > 0 || s.over }

// reset forgets any unfinished line.
func (s *splitter) reset() { s.n, s.over = 0, false }
