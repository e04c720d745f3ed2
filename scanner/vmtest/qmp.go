package vmtest

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"sync"
)

// QMPError is an error answer from QEMU's monitor ({"error": {...}}).
type QMPError struct {
	Class string `json:"class"`
	Desc  string `json:"desc"`
}

// Error returns the class and QEMU's description.
func (e *QMPError) Error() string { return "qmp: " + e.Class + ": " + e.Desc }

// QMPEvent is an asynchronous QMP event such as DEVICE_DELETED.
type QMPEvent struct {
	Event string          `json:"event"`
	Data  json.RawMessage `json:"data"`
}

// QMP is a minimal client of QEMU's machine protocol: one command at a time,
// events delivered on Events. Its reader goroutine ends when the connection
// closes (Close, or QEMU exiting).
type QMP struct {
	conn    net.Conn
	mu      sync.Mutex // one command in flight: QMP answers in order
	replies chan qmpReply
	events  chan QMPEvent
	quit    chan struct{} // closed by Close: unblocks a reader holding an unread reply
	done    chan struct{} // closed when the reader goroutine has ended
	once    sync.Once
}

type qmpReply struct {
	Return json.RawMessage `json:"return"`
	Error  *QMPError       `json:"error"`
	Event  string          `json:"event"`
	Data   json.RawMessage `json:"data"`
}

// DialQMP connects to a QMP unix socket and leaves capabilities negotiation
// mode, so commands can be sent.
func DialQMP(ctx context.Context, path string) (*QMP, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return nil, fmt.Errorf("qmp: dial %s: %w", path, err)
	}
	q := &QMP{conn: conn, replies: make(chan qmpReply, 1), events: make(chan QMPEvent, 64), quit: make(chan struct{}), done: make(chan struct{})}
	r := bufio.NewReader(conn)
	if _, err := r.ReadBytes('\n'); err != nil { // greeting
		conn.Close()
		return nil, fmt.Errorf("qmp: greeting: %w", err)
	}
	go q.readLoop(r)
	if _, err := q.Execute(ctx, "qmp_capabilities", nil); err != nil {
		q.Close()
		return nil, err
	}
	return q, nil
}

func (q *QMP) readLoop(r *bufio.Reader) {
	defer close(q.done)
	for {
		line, err := r.ReadBytes('\n')
		if err != nil {
			return
		}
		var m qmpReply
		if json.Unmarshal(line, &m) != nil {
			continue
		}
		if m.Event != "" {
			select {
			case q.events <- QMPEvent{Event: m.Event, Data: m.Data}:
			default: // nobody waits for old events; never block the replies
			}
			continue
		}
		select {
		case q.replies <- m:
		case <-q.quit:
			return
		}
	}
}

// Events delivers QMP events; unread events beyond a small buffer are dropped.
func (q *QMP) Events() <-chan QMPEvent { return q.events }

// Execute runs one QMP command and returns its "return" value.
func (q *QMP) Execute(ctx context.Context, cmd string, args any) (json.RawMessage, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	req := map[string]any{"execute": cmd}
	if args != nil {
		req["arguments"] = args
	}
	b, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("qmp: %s: %w", cmd, err)
	}
	if _, err := q.conn.Write(append(b, '\n')); err != nil {
		return nil, fmt.Errorf("qmp: %s: %w", cmd, err)
	}
	select {
	case m := <-q.replies:
		if m.Error != nil {
			return nil, fmt.Errorf("qmp: %s: %w", cmd, m.Error)
		}
		return m.Return, nil
	case <-q.done:
		return nil, fmt.Errorf("qmp: %s: %w", cmd, ErrQMPClosed)
	case <-ctx.Done():
		return nil, fmt.Errorf("qmp: %s: %w", cmd, ctx.Err())
	}
}

// ErrQMPClosed means the monitor connection ended (QEMU exited).
var ErrQMPClosed = errors.New("qmp: connection closed")

// Close closes the connection and waits for the reader goroutine.
func (q *QMP) Close() error {
	var err error
	q.once.Do(func() {
		close(q.quit)
		err = q.conn.Close()
	})
	<-q.done
	return err
}
