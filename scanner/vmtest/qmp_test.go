package vmtest

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"net"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeMonitor speaks QEMU's side of QMP on a real unix socket: greeting,
// capabilities, then answers device_del with an error and everything else
// with an empty return preceded by an event.
func fakeMonitor(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "qmp.sock")
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() { l.Close(); <-done })
	go func() {
		defer close(done)
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		c.Write([]byte(`{"QMP": {"version": {}, "capabilities": []}}` + "\n"))
		r := bufio.NewReader(c)
		for {
			line, err := r.ReadBytes('\n')
			if err != nil {
				return
			}
			var req struct {
				Execute string `json:"execute"`
			}
			json.Unmarshal(line, &req)
			switch req.Execute {
			case "device_del":
				c.Write([]byte(`{"error": {"class": "DeviceNotFound", "desc": "Device 'x' not found"}}` + "\n"))
			default:
				c.Write([]byte(`{"event": "DEVICE_DELETED", "data": {"device": "us0"}}` + "\n"))
				c.Write([]byte(`{"return": {}}` + "\n"))
			}
		}
	}()
	return path
}

func TestQMPCommandsEventsErrors(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	q, err := DialQMP(ctx, fakeMonitor(t))
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	if _, err := q.Execute(ctx, "input-send-event", map[string]any{"events": []any{}}); err != nil {
		t.Fatal(err)
	}
	select {
	case ev := <-q.Events():
		if ev.Event != "DEVICE_DELETED" {
			t.Fatalf("event %q", ev.Event)
		}
	case <-ctx.Done():
		t.Fatal("no event delivered")
	}
	_, err = q.Execute(ctx, "device_del", map[string]any{"id": "x"})
	var qe *QMPError
	if !errors.As(err, &qe) || qe.Class != "DeviceNotFound" {
		t.Fatalf("device_del error = %v, want a *QMPError DeviceNotFound", err)
	}
}

func TestQMPClosedMonitor(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	q, err := DialQMP(ctx, fakeMonitor(t))
	if err != nil {
		t.Fatal(err)
	}
	q.Close()
	if _, err := q.Execute(ctx, "query-status", nil); err == nil {
		t.Fatal("Execute after Close succeeded")
	}
}
