package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kioskd/kioskd/payment/smartpay/sim"
	"github.com/kioskd/kioskd/payment/smartpay/sim/simtest"
	"github.com/kioskd/kioskd/scanner/serial/serialtest"
)

// footprintKiosk writes a devices.yaml with a serial scanner and a pole
// display on ptys and the web display, against a simulator on loopback;
// the agent logs at logLevel.
func footprintKiosk(tb testing.TB, logLevel string) (config, socket string) {
	tb.Helper()
	srv := simtest.NewServer(tb, sim.Config{})
	dir := srv.Dir

	var ports []string
	for range 2 {
		ports = append(ports, serialtest.New(tb, "").Slave.Name())
	}
	webAddr := simtest.FreeAddr(tb)

	socket = filepath.Join(dir, "api.sock")
	config = filepath.Join(dir, "devices.yaml")
	yaml := fmt.Sprintf(`kassa:
  id: %s
  fixed_amount: 10000
%sjournal: journal.db
api:
  socket: api.sock
scanners:
  - name: front
    driver: serial
    port: %s
displays:
  - name: pole
    driver: vfd
    port: %s
  - name: screen
    driver: web
    listen: %q
log:
  level: %s
`, sim.KassaID(1), srv.ServiceYAML(), ports[0], ports[1], webAddr, logLevel)
	if err := os.WriteFile(config, []byte(yaml), 0o600); err != nil {
		tb.Fatal(err)
	}
	return config, socket
}

// healthy asks /healthz on the control socket.
func healthy(client *http.Client) bool {
	resp, err := client.Get("http://kioskd/healthz")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

func unixClient(socket string) *http.Client {
	return &http.Client{Timeout: time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socket)
		}}}
}

// procStat returns the resident set in bytes and the CPU time used by pid.
func procStat(tb testing.TB, pid int) (rss int64, cpu time.Duration) {
	tb.Helper()
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		tb.Fatal(err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			rss = kb << 10
		}
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		tb.Fatal(err)
	}
	// Fields after the command name, which is in parentheses: utime and
	// stime are fields 14 and 15 of the whole line, in clock ticks (100/s).
	f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+2:]))
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return rss, time.Duration(utime+stime) * 10 * time.Millisecond
}

// BenchmarkFootprint starts the real agent with a serial scanner, a pole
// display and the web display open and reports the time from start to a
// ready /healthz, the idle resident set and the idle CPU share of a core.
//
//	go test -run X -bench Footprint -benchtime 1x ./cmd/kioskd/
func BenchmarkFootprint(b *testing.B) {
	bin, err := buildBinaries()
	if err != nil {
		b.Fatal(err)
	}
	idle := 10 * time.Second
	for range b.N {
		config, socket := footprintKiosk(b, "warn")
		client := unixClient(socket)
		cmd := exec.Command(filepath.Join(bin, "kioskd"), "run", "-config", config)
		cmd.Stderr = os.Stderr
		start := time.Now()
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		for !healthy(client) {
			if time.Since(start) > 20*time.Second {
				cmd.Process.Kill()
				cmd.Wait()
				b.Fatal("kioskd not ready within 20s")
			}
			time.Sleep(time.Millisecond)
		}
		ready := time.Since(start)
		time.Sleep(2 * time.Second) // let start-up garbage settle
		_, cpu0 := procStat(b, cmd.Process.Pid)
		time.Sleep(idle)
		rss, cpu1 := procStat(b, cmd.Process.Pid)
		cmd.Process.Signal(os.Interrupt)
		if err := cmd.Wait(); err != nil {
			b.Errorf("kioskd exited with %v after SIGINT", err)
		}
		b.ReportMetric(float64(ready.Microseconds())/1000, "ready-ms")
		b.ReportMetric(float64(rss)/(1<<20), "idle-rss-MiB")
		b.ReportMetric(100*float64(cpu1-cpu0)/float64(idle), "idle-cpu-%")
	}
}
