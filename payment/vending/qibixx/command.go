package qibixx

import (
	"fmt"
	"strings"
)

// Command is one host → adapter line, without its "\n".
type Command string

// Bytes returns the command as written to the port, ended with "\n".
func (c Command) Bytes() []byte { return []byte(string(c) + "\n") }

// MaxDisplayText is the most characters a display request carries.
const MaxDisplayText = 32

// CmdEnable switches the adapter's cashless slave on (C,1) or off (C,0).
// It must be off while it is configured.
func CmdEnable(on bool) Command {
	if on {
		return "C,1"
	}
	return "C,0"
}

// CmdSetConf sets one cashless slave parameter: C,SETCONF,<key>=<value>.
func CmdSetConf(key, value string) (Command, error) {
	if !confToken(key) || !confToken(value) {
		return "", fmt.Errorf("qibixx: SETCONF %q=%q: want letters, digits and '-' only", key, value)
	}
	return Command("C,SETCONF," + key + "=" + value), nil
}

// CmdStart begins a session with funds available (authorization-first
// machines; not used in always-idle mode): C,START,<funds>.
func CmdStart(funds string) (Command, error) {
	if !validAmount(funds) {
		return "", fmt.Errorf("qibixx: START %q: want an amount such as 1.50", funds)
	}
	return Command("C,START," + funds), nil
}

// CmdVend approves the pending vend request for amount: C,VEND,<amount>.
// The amount comes from Money.Format.
func CmdVend(amount string) (Command, error) {
	if !validAmount(amount) {
		return "", fmt.Errorf("qibixx: VEND %q: want an amount such as 1.50", amount)
	}
	return Command("C,VEND," + amount), nil
}

// CmdStop denies the pending vend request or ends the session: C,STOP.
func CmdStop() Command { return "C,STOP" }

// CmdDisplay asks the VMC to show text on the machine's display:
// C,DISPLAY,<text>. The text is printable ASCII (what an MDB display shows)
// of at most MaxDisplayText characters.
func CmdDisplay(text string) (Command, error) {
	if len(text) > MaxDisplayText {
		return "", fmt.Errorf("qibixx: display text of %d characters: at most %d fit", len(text), MaxDisplayText)
	}
	for _, c := range []byte(text) {
		if c < 0x20 || c > 0x7e {
			return "", fmt.Errorf("qibixx: display text %q: only printable ASCII reaches an MDB display; transliterate it", text)
		}
	}
	return Command("C,DISPLAY," + text), nil
}

// CmdVersion asks the adapter for its version (V); the answer v,… is the
// liveness probe.
func CmdVersion() Command { return "V" }

func confToken(s string) bool {
	return s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-") == ""
}
