package vmcsim

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"
)

const replHelp = `commands:
  list                     the products
  N                        select item N (same as: select N)
  select N [KOPECKS]       select item N, at another price if given
  cancel                   press cancel on the machine
  dispense ok|fail|hang    what approved vends do from now on
  finish ok|fail           end a hanging vend
  reset vmc                the VMC resets the reader
  reset adapter [hangup]   the adapter reboots (hangup: its USB tty goes away)
  disable | enable         the VMC disables / enables the reader
  unplug | replug          pull / plug the adapter's USB cable
  silence on|off           the adapter stops / resumes talking
  raw TEXT                 send TEXT and a newline to kioskd as the adapter
  status                   the machine's state
  quit
`

// REPL runs commands typed on in, one a line, writing answers to out, until
// ctx ends, in ends or "quit". It reads in on a goroutine it owns, which
// it ends by closing in: pass a reader whose Close interrupts a pending
// Read (a pipe, a non-blocking tty).
func (m *Machine) REPL(ctx context.Context, in io.ReadCloser, out io.Writer) error {
	lines := make(chan string)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(lines)
		sc := bufio.NewScanner(in)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			case <-ctx.Done():
				return
			}
		}
	}()
	defer func() {
		in.Close()
		wg.Wait()
	}()
	fmt.Fprintf(out, "vending machine with a Qibixx adapter at %s; type help\n", m.cfg.Link)
	m.list(out)
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case line, ok := <-lines:
			if !ok {
				return nil
			}
			quit, err := m.command(out, strings.Fields(line))
			if err != nil {
				fmt.Fprintln(out, "error:", err)
			}
			if quit {
				return nil
			}
		}
	}
}

func (m *Machine) list(out io.Writer) {
	for _, p := range m.cfg.Products {
		pad := max(1, 26-utf8.RuneCountInString(p.Name)) // %-26s would count bytes
		fmt.Fprintf(out, "  %3d  %s%s%s\n", p.Item, p.Name, strings.Repeat(" ", pad), rubles(p.Price))
	}
}

// command runs one REPL command.
func (m *Machine) command(out io.Writer, f []string) (quit bool, err error) {
	if len(f) == 0 {
		return false, nil
	}
	arg := func(i int) string {
		if i < len(f) {
			return f[i]
		}
		return ""
	}
	onOff := func(s, on, off string) (bool, error) {
		switch s {
		case on:
			return true, nil
		case off:
			return false, nil
		}
		return false, fmt.Errorf("want %s or %s", on, off)
	}
	if n, err := strconv.Atoi(f[0]); err == nil {
		return false, m.Select(n)
	}
	switch f[0] {
	case "help", "?":
		fmt.Fprint(out, replHelp)
	case "list":
		m.list(out)
	case "select":
		n, err := strconv.Atoi(arg(1))
		if err != nil {
			return false, errors.New("select N [KOPECKS]")
		}
		if len(f) < 3 {
			return false, m.Select(n)
		}
		price, err := strconv.ParseInt(f[2], 10, 64)
		if err != nil {
			return false, errors.New("select N [KOPECKS]")
		}
		return false, m.SelectAt(n, price)
	case "cancel":
		return false, m.Cancel()
	case "dispense":
		d, ok := map[string]Dispense{"ok": DispenseOK, "fail": DispenseFail, "hang": DispenseHang}[arg(1)]
		if !ok {
			return false, errors.New("dispense ok|fail|hang")
		}
		return false, m.SetDispense(d)
	case "finish":
		ok, err := onOff(arg(1), "ok", "fail")
		if err != nil {
			return false, err
		}
		return false, m.FinishVend(ok)
	case "reset":
		switch arg(1) {
		case "vmc":
			return false, m.ResetVMC()
		case "adapter":
			return false, m.ResetAdapter(arg(2) == "hangup")
		}
		return false, errors.New("reset vmc | reset adapter [hangup]")
	case "disable", "enable":
		return false, m.EnableReader(f[0] == "enable")
	case "unplug":
		return false, m.Unplug()
	case "replug":
		return false, m.Replug()
	case "silence":
		on, err := onOff(arg(1), "on", "off")
		if err != nil {
			return false, err
		}
		return false, m.Silence(on)
	case "raw":
		_, text, _ := strings.Cut(strings.Join(f, " "), " ")
		return false, m.Raw(text + "\n")
	case "status":
		// Through Run's goroutine, so that everything already narrated
		// shows in the snapshot.
		if err := m.do(func(*state) error { return nil }); err != nil {
			return false, err
		}
		s := m.Snapshot()
		fmt.Fprintf(out, "linked %v, slave on %v, reader %v, session %q item %d, silent %v, booting %v\nconfig: %v\n",
			s.Linked, s.SlaveOn, s.Reader, s.Session.Phase, s.Session.Item, s.Silent, s.Booting, s.Config)
		for _, o := range s.Outcomes {
			fmt.Fprintf(out, "  %-22v item %d %s approved %q\n", o.Kind, o.Item, rubles(o.Price), o.Approved)
		}
	case "quit", "exit":
		return true, nil
	default:
		return false, fmt.Errorf("unknown command %q; type help", f[0])
	}
	return false, nil
}
