package proctest_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/kioskd/kioskd/payment/proctest"
	sp "github.com/kioskd/kioskd/payment/smartpay"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestProcessKillAndStop(t *testing.T) {
	var p proctest.Process
	p.Kill() // nothing started: nothing to do
	if err := p.Start(exec.Command("sleep", "30")); err != nil {
		t.Fatal(err)
	}
	if p.Killed() {
		t.Fatal("killed before Kill")
	}
	p.Kill()
	p.Kill()
	select {
	case <-p.Exited():
	default:
		t.Fatal("Kill returned before the process was gone")
	}
	if !p.Killed() {
		t.Fatal("not Killed after Kill")
	}
	// A process that exits cleanly on SIGTERM stops without an error; a
	// new Start is not killed.
	if err := p.Start(exec.Command("sh", "-c", `trap "exit 0" TERM; while :; do sleep 0.05; done`)); err != nil {
		t.Fatal(err)
	}
	if p.Killed() {
		t.Fatal("a new process counts as killed")
	}
	time.Sleep(100 * time.Millisecond) // let sh set its trap
	if err := p.Stop(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	// One that dies of the signal is an unclean stop.
	if err := p.Start(exec.Command("sleep", "30")); err != nil {
		t.Fatal(err)
	}
	if err := p.Stop(10 * time.Second); err == nil || !strings.Contains(err.Error(), "after SIGTERM") {
		t.Fatalf("stop of a process killed by SIGTERM: %v", err)
	}
}

// The trap kills once per Arm, at the call it names: before it takes effect
// (the handler never runs), or after (the handler ran, the answer is lost);
// a call whose answer lacks Answer passes.
func TestTrap(t *testing.T) {
	var handled []string
	var kills []string
	trap := &proctest.Trap{Kill: func(at proctest.At) { kills = append(kills, at.String()) }}
	api := trap.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		handled = append(handled, string(b))
		io.WriteString(w, `{"status":"`+string(b)+`"}`)
	}))
	call := func(path, body string) int {
		rec := httptest.NewRecorder()
		api.ServeHTTP(rec, httptest.NewRequest("POST", path, strings.NewReader(body)))
		return rec.Code
	}
	trap.Arm(proctest.At{Method: sp.MethodKassaStatus, Body: `cancel`})
	if call(sp.PathKassaStatus, "success") != 200 || call(sp.PathCommit, "cancel") != 200 {
		t.Fatal("a call the trap does not name was not served")
	}
	if call(sp.PathKassaStatus, "cancel") != http.StatusServiceUnavailable || len(kills) != 1 || len(handled) != 2 {
		t.Fatalf("before: kills %v, handled %v", kills, handled)
	}
	if call(sp.PathKassaStatus, "cancel") != 200 || len(kills) != 1 {
		t.Fatal("the trap fired twice for one Arm")
	}
	trap.Arm(proctest.At{Method: sp.MethodStatus, Answer: `"status":"success"`, After: true})
	if call(sp.PathStatus, "processing") != 200 || len(kills) != 1 {
		t.Fatal("an answer the trap does not wait for was lost")
	}
	call(sp.PathStatus, "success")
	if len(kills) != 2 || kills[1] != "after_status" || handled[len(handled)-1] != "success" {
		t.Fatalf("after: kills %v, handled %v", kills, handled)
	}
	trap.Arm(proctest.At{Method: sp.MethodRefund})
	if !trap.Disarm() || trap.Disarm() {
		t.Fatal("Disarm does not report the armed point once")
	}
}
