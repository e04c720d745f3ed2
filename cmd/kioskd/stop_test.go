package main

import (
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kioskd/kioskd/payment/proctest"
)

// A second kioskd on the same journal exits saying that another kioskd holds
// it and which control socket that one serves; the first, stopped with
// SIGTERM, logs the stop, its reason and what was in flight.
func TestSecondKioskdAndStopLog(t *testing.T) {
	bin, err := buildBinaries()
	if err != nil {
		t.Fatal(err)
	}
	config, socket := footprintKiosk(t, "info")
	var log proctest.Output
	first := exec.Command(filepath.Join(bin, "kioskd"), "run", "-config", config)
	first.Stderr = &log
	if err := first.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- first.Wait() }()
	stopped := false
	defer func() {
		if !stopped {
			first.Process.Kill()
			<-exited
		}
	}()
	client := unixClient(socket)
	deadline := time.Now().Add(20 * time.Second)
	for !healthy(client) {
		if time.Now().After(deadline) {
			t.Fatalf("kioskd not ready within 20s:\n%s", log.String())
		}
		time.Sleep(10 * time.Millisecond)
	}

	out, err := exec.Command(filepath.Join(bin, "kioskd"), "run", "-config", config).CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 ||
		!strings.Contains(string(out), "another kioskd holds the journal") ||
		!strings.Contains(string(out), "it serves the control socket "+socket) {
		t.Fatalf("second kioskd: %v\n%s", err, out)
	}
	if !healthy(client) {
		t.Fatal("the first kioskd suffered from the second")
	}

	if err := first.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		stopped = true
		if err != nil {
			t.Fatalf("kioskd exited with %v after SIGTERM:\n%s", err, log.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("kioskd did not stop within 20s of SIGTERM")
	}
	for _, want := range []string{"kioskd stopping; nothing in flight", "terminated signal received", "kioskd stopped"} {
		if !strings.Contains(log.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, log.String())
		}
	}
}
