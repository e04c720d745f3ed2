package qibixx

import (
	"sync"

	"go.uber.org/zap"
)

// maxProblemKeys bounds the distinct problems remembered for logging once,
// so that endlessly varying garbage cannot grow memory.
const maxProblemKeys = 128

// onceLog logs each distinct problem once at Warn and again only at Debug.
type onceLog struct {
	log  *zap.Logger
	mu   sync.Mutex
	seen map[string]struct{}
	full bool
}

func newOnceLog(log *zap.Logger) *onceLog {
	return &onceLog{log: log, seen: make(map[string]struct{})}
}

// warn logs msg at Warn the first time key is seen, at Debug afterwards.
func (o *onceLog) warn(key, msg string, fields ...zap.Field) {
	o.mu.Lock()
	_, seen := o.seen[key]
	switch {
	case seen:
	case len(o.seen) < maxProblemKeys:
		o.seen[key] = struct{}{}
	case !o.full:
		o.full = true
		o.log.Warn("qibixx: too many distinct problems, further new ones are logged at debug level only",
			zap.Int("distinct", len(o.seen)))
		seen = true
	default:
		seen = true
	}
	o.mu.Unlock()
	if seen {
		o.log.Debug(msg, fields...)
		return
	}
	o.log.Warn(msg, fields...)
}
