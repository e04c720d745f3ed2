package smartpay

import (
	"context"
	"errors"
	"net/http"
	"time"

	"go.uber.org/zap"
)

// keepWarm makes one keep-warm call every period. After a failure (or a
// failed Start) it tries again sooner, from 1s doubling up to the period,
// so a kiosk whose network comes up late is ready in seconds. A failure is
// logged once per distinct error, and the recovery once, to keep the log
// readable through an outage.
func (c *Client) keepWarm(ctx context.Context, failed bool) {
	period := c.cfg.KeepWarm
	first := min(time.Second, period)
	wait, backoff := period, first
	if failed {
		wait, backoff = first, min(2*first, period)
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	var failing string
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		err := c.keepWarmCall(ctx)
		switch {
		case ctx.Err() != nil:
			return
		case err == nil:
			if failing != "" {
				c.log.Info("keep-warm: the service answers again")
			}
			failing, wait, backoff = "", period, first
		default:
			if err.Error() != failing {
				c.log.Warn("keep-warm failed; trying again", zap.Duration("in", backoff), zap.Error(err))
			}
			failing, wait, backoff = err.Error(), backoff, min(2*backoff, period)
		}
		t.Reset(wait)
	}
}

// keepWarmCall is one period's calls: a login when the session is missing
// or about to expire, then the error answers while they are not cached (what
// Start did not finish), else a ping, which makes one attempt: the loop is
// its retry.
func (c *Client) keepWarmCall(ctx context.Context) error {
	c.mu.Lock()
	renew := c.renewDueLocked(time.Now())
	gen := c.sessionGen
	haveAnswers := c.answers != nil
	c.mu.Unlock()
	if renew {
		if err := c.auth(ctx, gen); err != nil || haveAnswers {
			return err
		}
	}
	if !haveAnswers {
		_, err := c.fetchErrorAnswers(ctx)
		return err
	}
	return c.ping(ctx, false)
}

// Warm makes sure the session is valid and a connection is open. It is cheap
// (no I/O) when a call completed within the last KeepWarm period and the
// session is not about to expire; otherwise it costs a round trip (or a
// login), so call it from a goroutine, not from the scanner's reading
// goroutine.
func (c *Client) Warm(ctx context.Context) error {
	now := time.Now()
	c.mu.Lock()
	renew := c.renewDueLocked(now)
	gen := c.sessionGen
	idle := now.Sub(c.lastRT)
	c.mu.Unlock()
	if renew {
		return c.auth(ctx, gen)
	}
	if idle < c.cfg.KeepWarm {
		return nil
	}
	return c.Ping(ctx)
}

// renewDueLocked reports whether the session is missing or expires within
// two keep-warm periods and an attempt, so one missed period still leaves a
// valid session.
func (c *Client) renewDueLocked(now time.Time) bool {
	margin := 2*c.cfg.KeepWarm + c.cfg.AttemptTimeout
	return c.cookie == nil || (!c.expires.IsZero() && c.expires.Sub(now) < margin)
}

// auth logs in unless someone else did since generation gen was observed.
// Each login is a call of its own for the Observer (MethodAuth).
func (c *Client) auth(ctx context.Context, gen uint64) error {
	c.authMu.Lock()
	defer c.authMu.Unlock()
	c.mu.Lock()
	if c.sessionGen != gen && c.cookie != nil {
		c.mu.Unlock()
		return nil // a concurrent caller already logged in
	}
	c.mu.Unlock()
	start := time.Now()
	err := c.login(ctx)
	c.observe(MethodAuth, time.Since(start), err)
	return err
}

func (c *Client) login(ctx context.Context) error {
	resp, err := c.roundTrip(ctx, http.MethodPost, PathAuth, struct{}{}, false)
	if err != nil {
		return err
	}
	defer drain(resp)
	if resp.StatusCode/100 != 2 {
		return c.apiError(PathAuth, resp)
	}
	var sess *http.Cookie
	for _, ck := range resp.Cookies() {
		if ck.Value != "" {
			sess = ck
			break
		}
	}
	if sess == nil {
		// Without a session nothing that needs one can be sent.
		return &callError{path: PathAuth, verdict: Unavailable, err: errors.New("login answer has no session cookie")}
	}
	var exp time.Time
	switch {
	case sess.MaxAge > 0:
		exp = time.Now().Add(time.Duration(sess.MaxAge) * time.Second)
	case !sess.Expires.IsZero():
		exp = sess.Expires
	}
	c.mu.Lock()
	c.cookie = &http.Cookie{Name: sess.Name, Value: sess.Value}
	c.expires = exp
	c.sessionGen++
	c.mu.Unlock()
	c.log.Debug("logged in", zap.Time("session_expires", exp))
	return nil
}
