package hidtest

import "sync"

// Queue holds what a fake device has left to read, handed out one read at
// a time. It is safe for concurrent use; a nil Queue is empty.
type Queue struct {
	mu    sync.Mutex
	reads [][]byte
}

// NewQueue returns a Queue of reads; a nil or empty entry is a
// zero-length read.
func NewQueue(reads [][]byte) *Queue { return &Queue{reads: reads} }

// Next returns the next read; ok is false once they are spent.
func (q *Queue) Next() (b []byte, ok bool) {
	if q == nil {
		return nil, false
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.reads) == 0 {
		return nil, false
	}
	b, q.reads = q.reads[0], q.reads[1:]
	return b, true
}
