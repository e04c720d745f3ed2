package smartpay_test

import (
	"context"
	"errors"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/kioskd/kioskd/payment/smartpay"
	"github.com/kioskd/kioskd/payment/smartpay/sim"
)

var bg = context.Background()

func TestPurchaseAndRefundFlow(t *testing.T) {
	e := newEnv(t, sim.Config{})
	c := e.NewClient(t)
	q := e.qr("u1")
	cr, err := c.Commit(bg, smartpay.CommitRequest{KassaPurchaseID: "1700000000001", QR: q})
	if err != nil {
		t.Fatal(err)
	}
	st, err := c.Status(bg, cr.PurchaseID)
	if err != nil || st.Status != smartpay.Committed || st.Amount != 0 {
		t.Fatalf("after commit: %+v %v", st, err)
	}
	rr, err := c.Release(bg, cr.PurchaseID, 12345)
	if err != nil || rr.Status != smartpay.Released || rr.PurchaseID != cr.PurchaseID {
		t.Fatalf("release: %+v %v", rr, err)
	}
	st = waitStatus(t, c, cr.PurchaseID, smartpay.Success)
	if st.Amount != 12345 || st.Code != 0 {
		t.Fatalf("success: %+v", st)
	}
	if err := c.KassaStatus(bg, cr.PurchaseID, smartpay.KassaSuccess); err != nil {
		t.Fatal(err)
	}
	if err := c.FiscalV1(bg, smartpay.FiscalV1Request{PurchaseID: cr.PurchaseID, KKTRegNumber: "0000000001012345", FiscalSign: "1234567890"}); err != nil {
		t.Fatal(err)
	}
	rc := receipt()
	if err := c.FiscalV2(bg, smartpay.FiscalV2Request{QR: q, PurchaseID: cr.PurchaseID, Receipt: rc}); err != nil {
		t.Fatal(err)
	}
	ref, err := c.Refund(bg, smartpay.RefundRequest{PurchaseID: cr.PurchaseID, KassaRefundID: "1700000000002", Amount: 345})
	if err != nil {
		t.Fatal(err)
	}
	rs, err := c.RefundStatus(bg, ref.RefundID)
	if err != nil || rs.Status != smartpay.RefundPending {
		t.Fatalf("refund status: %+v %v", rs, err)
	}
	for rs.Status == smartpay.RefundPending {
		time.Sleep(10 * time.Millisecond)
		if rs, err = c.RefundStatus(bg, ref.RefundID); err != nil {
			t.Fatal(err)
		}
	}
	if rs.Status != smartpay.RefundSuccess {
		t.Fatalf("refund ended %s", rs.Status)
	}
	if err := c.RefundKassaStatus(bg, ref.RefundID, smartpay.KassaSuccess); err != nil {
		t.Fatal(err)
	}

	state := e.State()
	p, ok := state.Purchase(cr.PurchaseID)
	if !ok || p.Kassa != sim.KassaID(1) || !p.Confirmed || p.Refunded != 345 ||
		len(p.KassaConfirmations) != 1 || p.KassaConfirmations[0] != smartpay.KassaSuccess {
		t.Fatalf("sim purchase: %+v", p)
	}
	if r, _ := state.Refund(ref.RefundID); !r.Confirmed || r.Amount != 345 {
		t.Fatalf("sim refund: %+v", r)
	}
	if len(state.Fiscal) != 2 || state.Fiscal[0].Version != 1 || state.Fiscal[1].Version != 2 ||
		state.Fiscal[1].Receipt.Total != rc.Total || !state.Fiscal[1].Receipt.DateTime.Equal(rc.DateTime) {
		t.Fatalf("sim fiscal: %+v", state.Fiscal)
	}
}

func receipt() smartpay.Receipt {
	return smartpay.Receipt{
		KKTRegNumber: "0000000001012345", FNNumber: "9999078900012345", FDNumber: 42, FiscalSign: "3522207650",
		DateTime: time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC), Operation: smartpay.OperationIncome, Total: 12345,
		Items: []smartpay.ReceiptItem{{Name: "Кофе", Price: 12345, Quantity: 1, Amount: 12345, VAT: "vat20"}},
	}
}

func TestFiscalV2LoyaltyOnlyAndDuplicates(t *testing.T) {
	e := newEnv(t, sim.Config{})
	c := e.NewClient(t)
	req := smartpay.FiscalV2Request{QR: e.qr("u2"), Receipt: receipt()}
	for range 2 {
		if err := c.FiscalV2(bg, req); err != nil {
			t.Fatal(err)
		}
	}
	if f := e.State().Fiscal; len(f) != 2 || f[0].PurchaseID != "" || f[0].IDLoyalty != "u2" {
		t.Fatalf("fiscal records: %+v", f)
	}
	bad := req
	bad.Receipt.KKTRegNumber = "123"
	e.invalid(func() { wantCode(t, c.FiscalV2(bg, bad), smartpay.CodeBadRequest) })
	forged := req
	forged.QR.Sign = e.qr("u2").Sign
	wantCode(t, c.FiscalV2(bg, forged), smartpay.CodeBadSignature)
}

func TestCommitIdempotentAndCopyRefused(t *testing.T) {
	e := newEnv(t, sim.Config{})
	c1, c2 := e.NewClient(t), e.NewClient(t, e.Kassa(2))
	q := e.qr("u1")
	a, err := c1.Commit(bg, smartpay.CommitRequest{KassaPurchaseID: "10", QR: q})
	if err != nil {
		t.Fatal(err)
	}
	b, err := c1.Commit(bg, smartpay.CommitRequest{KassaPurchaseID: "10", QR: q})
	if err != nil || b.PurchaseID != a.PurchaseID {
		t.Fatalf("repeat: %v %v, want %s", b, err, a.PurchaseID)
	}
	_, err = c2.Commit(bg, smartpay.CommitRequest{KassaPurchaseID: "10", QR: q})
	wantCode(t, err, smartpay.CodeQRAlreadyCommitted)
	var ae *smartpay.APIError
	if !errors.As(err, &ae) || ae.HTTPStatus != 409 || ae.Message == "" || errors.Is(err, smartpay.ErrOutcomeUnknown) {
		t.Fatalf("copy at another kassa: %#v", err)
	}
	_, err = c1.Commit(bg, smartpay.CommitRequest{KassaPurchaseID: "11", QR: q})
	wantCode(t, err, smartpay.CodeQRAlreadyCommitted)
	_, err = c1.Commit(bg, smartpay.CommitRequest{KassaPurchaseID: "10", QR: e.qr("u1")})
	wantCode(t, err, smartpay.CodeIdempotencyConflict)
	if n := len(e.State().Purchases); n != 1 {
		t.Fatalf("%d purchases, want 1", n)
	}
	// Kassa 2 cannot see kassa 1's purchase.
	_, err = c2.Status(bg, a.PurchaseID)
	wantCode(t, err, smartpay.CodeNotFound)
}

func TestQRCryptoChecks(t *testing.T) {
	e := newEnv(t, sim.Config{StaleWindow: time.Minute})
	c := e.NewClient(t)
	try := func(kid string, q smartpay.QR) error {
		_, err := c.Commit(bg, smartpay.CommitRequest{KassaPurchaseID: kid, QR: q})
		return err
	}
	if err := try("1", e.QRCode(t, sim.QRParams{UserID: "u1", OTP: "111111"})); err != nil {
		t.Fatal(err)
	}
	// Same OTP, fresh ciphertext (RSA-OAEP is randomised): only the OTP check catches it.
	wantCode(t, try("2", e.QRCode(t, sim.QRParams{UserID: "u1", OTP: "111111"})), smartpay.CodeOTPReused)
	wantCode(t, try("3", e.QRCode(t, sim.QRParams{UserID: "u1", Time: time.Now().Add(-2 * time.Minute)})), smartpay.CodeStaleTimestamp)
	wantCode(t, try("4", e.QRCode(t, sim.QRParams{UserID: "u1", Time: time.Now().Add(2 * time.Minute)})), smartpay.CodeStaleTimestamp)
	q := e.qr("u1")
	q.Sign = e.qr("u1").Sign // a valid signature of another string
	wantCode(t, try("5", q), smartpay.CodeBadSignature)
	q = e.qr("u1")
	q.Encrypted = strings.Repeat("QUJD", 86) + "QQ==" // base64, not our ciphertext
	wantCode(t, try("6", q), smartpay.CodeBadQR)
	// A refused QR does not burn the kassa id: a good QR can use it next.
	if err := try("5", e.qr("u1")); err != nil {
		t.Fatal(err)
	}
}

func TestScriptedOutcomes(t *testing.T) {
	e := newEnv(t, sim.Config{SuccessDelay: 30 * time.Millisecond})
	c := e.NewClient(t)

	declined := commit(t, e, c, "1")
	if _, err := c.Release(bg, declined, 10051); err != nil {
		t.Fatal(err)
	}
	st := waitStatus(t, c, declined, smartpay.Failed)
	if st.Code != smartpay.CodePaymentDeclined || st.Message == "" {
		t.Fatalf("declined: %+v", st)
	}

	stuck := commit(t, e, c, "2")
	if _, err := c.Release(bg, stuck, 52); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond) // well past SuccessDelay
	if st, err := c.Status(bg, stuck); err != nil || st.Status != smartpay.Processing {
		t.Fatalf("52: %+v %v", st, err)
	}
	if err := c.KassaStatus(bg, stuck, smartpay.KassaCancel); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, c, stuck, smartpay.Cancelled)
	if err := c.KassaStatus(bg, stuck, smartpay.KassaSuccess); smartpay.CodeOf(err) != smartpay.CodeBadState {
		t.Fatalf("success after cancel: %v", err)
	}

	// Cancel after success but before the kassa confirmed: the service reverses.
	reversed := paid(t, e, c, "3", 1000)
	if err := c.KassaStatus(bg, reversed, smartpay.KassaCancel); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, c, reversed, smartpay.Cancelled)
	if p, _ := e.State().Purchase(reversed); !p.Reversed {
		t.Fatalf("not reversed: %+v", p)
	}

	// After the kassa confirmed success only a refund returns money.
	done := paid(t, e, c, "4", 1000)
	if err := c.KassaStatus(bg, done, smartpay.KassaSuccess); err != nil {
		t.Fatal(err)
	}
	wantCode(t, c.KassaStatus(bg, done, smartpay.KassaCancel), smartpay.CodeBadState)
	// Confirming twice is harmless (a retried confirmation).
	if err := c.KassaStatus(bg, done, smartpay.KassaSuccess); err != nil {
		t.Fatal(err)
	}
}

func TestReleaseChecks(t *testing.T) {
	e := newEnv(t, sim.Config{MaxAmount: 1_000_000})
	c1, c2 := e.NewClient(t), e.NewClient(t, e.Kassa(2))
	id := commit(t, e, c1, "1")
	e.invalid(func() {
		for _, amount := range []int64{0, -5} {
			_, err := c1.Release(bg, id, amount)
			wantCode(t, err, smartpay.CodeBadAmount)
		}
	})
	_, err0 := c1.Release(bg, id, 1_000_001)
	wantCode(t, err0, smartpay.CodeBadAmount)
	_, err := c2.Release(bg, id, 100)
	wantCode(t, err, smartpay.CodeNotFound)
	_, err = c1.Release(bg, "pur-nope", 100)
	wantCode(t, err, smartpay.CodeNotFound)
	if _, err := c1.Release(bg, id, 100); err != nil {
		t.Fatal(err)
	}
	_, err = c1.Release(bg, id, 200)
	wantCode(t, err, smartpay.CodeBadState)
}

func TestRefundRules(t *testing.T) {
	e := newEnv(t, sim.Config{SuccessDelay: 20 * time.Millisecond})
	c := e.NewClient(t)
	pending := commit(t, e, c, "1")
	_, err := c.Refund(bg, smartpay.RefundRequest{PurchaseID: pending, KassaRefundID: "r1", Amount: 1})
	wantCode(t, err, smartpay.CodeRefundNotAllowed)

	id := paid(t, e, c, "2", 1000)
	_, err = c.Refund(bg, smartpay.RefundRequest{PurchaseID: id, KassaRefundID: "r2", Amount: 1001})
	wantCode(t, err, smartpay.CodeRefundExceedsAmount)
	a, err := c.Refund(bg, smartpay.RefundRequest{PurchaseID: id, KassaRefundID: "r3", Amount: 600})
	if err != nil {
		t.Fatal(err)
	}
	again, err := c.Refund(bg, smartpay.RefundRequest{PurchaseID: id, KassaRefundID: "r3", Amount: 600})
	if err != nil || again.RefundID != a.RefundID {
		t.Fatalf("repeat refund: %v %v, want %s", again, err, a.RefundID)
	}
	_, err = c.Refund(bg, smartpay.RefundRequest{PurchaseID: id, KassaRefundID: "r3", Amount: 500})
	wantCode(t, err, smartpay.CodeIdempotencyConflict)
	_, err = c.Refund(bg, smartpay.RefundRequest{PurchaseID: id, KassaRefundID: "r4", Amount: 401})
	wantCode(t, err, smartpay.CodeRefundExceedsAmount)
	// Cancelling a pending refund frees its amount.
	if err := c.RefundKassaStatus(bg, a.RefundID, smartpay.KassaCancel); err != nil {
		t.Fatal(err)
	}
	if rs, err := c.RefundStatus(bg, a.RefundID); err != nil || rs.Status != smartpay.RefundCancelled {
		t.Fatalf("cancelled refund: %+v %v", rs, err)
	}
	if _, err := c.Refund(bg, smartpay.RefundRequest{PurchaseID: id, KassaRefundID: "r5", Amount: 1000}); err != nil {
		t.Fatal(err)
	}
	_, err = c.RefundStatus(bg, "ref-nope")
	wantCode(t, err, smartpay.CodeNotFound)
	wantCode(t, c.RefundKassaStatus(bg, "ref-nope", smartpay.KassaSuccess), smartpay.CodeNotFound)
}

func TestSessionExpiryReauth(t *testing.T) {
	e := newEnv(t, sim.Config{SessionTTL: time.Second})
	c := e.NewClient(t)
	id := commit(t, e, c, "1")
	time.Sleep(1100 * time.Millisecond)
	if _, err := c.Status(bg, id); err != nil {
		t.Fatal(err)
	}
	if n := e.Requests(sim.MethodAuth); n != 2 {
		t.Fatalf("%d logins, want 2 (start + after expiry)", n)
	}
	// An injected expiry: the call gets 401, the client logs in and repeats it once.
	e.Fault(t, sim.Fault{Method: sim.MethodStatus, Kind: sim.FaultExpireSession})
	before := e.Requests(sim.MethodStatus)
	if _, err := c.Status(bg, id); err != nil {
		t.Fatal(err)
	}
	if n := e.Requests(sim.MethodAuth); n != 3 {
		t.Fatalf("%d logins, want 3", n)
	}
	if n := e.Requests(sim.MethodStatus) - before; n != 2 {
		t.Fatalf("%d status requests, want 2 (401, then the retry)", n)
	}
	// 401 twice in a row: one re-login, then the 401 is returned.
	e.Fault(t, sim.Fault{Method: sim.MethodStatus, Kind: sim.FaultStatus, Status: 401, Code: smartpay.CodeSessionExpired, Count: 2})
	_, err := c.Status(bg, id)
	wantCode(t, err, smartpay.CodeSessionExpired)
}

func TestKeepWarm(t *testing.T) {
	e := newEnv(t, sim.Config{SessionTTL: 2 * time.Second})
	c := e.NewClient(t, func(cfg *smartpay.Config) {
		cfg.KeepWarm = 200 * time.Millisecond
		cfg.AttemptTimeout = 300 * time.Millisecond
	})
	// Warm right after Start is free: the connection and session are fresh.
	if err := c.Warm(bg); err != nil {
		t.Fatal(err)
	}
	if n := e.Requests(sim.MethodPing); n != 0 {
		t.Fatalf("%d pings right after start", n)
	}
	// Idle past the session's life: the loop pings and renews the session
	// before it expires, so a call after it never meets a 401.
	time.Sleep(3 * time.Second)
	st := e.State()
	if st.Requests[sim.MethodPing] < 3 || st.Requests[sim.MethodAuth] < 2 {
		t.Fatalf("keep-warm: %v", st.Requests)
	}
	// The loop may renew at any moment, so count commits, not logins: a
	// commit that met an expired session would have been sent twice (401, retry).
	commit(t, e, c, "1")
	if n := e.Requests(sim.MethodCommit); n != 1 {
		t.Fatalf("commit sent %d times: the session was not kept valid", n)
	}
}

func TestFaults(t *testing.T) {
	e := newEnv(t, sim.Config{})
	// Generous against a loaded machine: a spurious timeout would retry and
	// change the request counts the subtests check.
	c := e.NewClient(t, func(cfg *smartpay.Config) { cfg.AttemptTimeout = time.Second })

	t.Run("delay past deadline is outcome unknown, and did take effect", func(t *testing.T) {
		id := commit(t, e, c, "1")
		e.Fault(t, sim.Fault{Method: sim.MethodRelease, Kind: sim.FaultDelay, Delay: 1500 * time.Millisecond})
		_, err := c.Release(bg, id, 100)
		if !errors.Is(err, smartpay.ErrOutcomeUnknown) || errors.Is(err, smartpay.ErrUnavailable) ||
			!errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("got %v", err)
		}
		if n := e.Requests(sim.MethodRelease); n != 1 {
			t.Fatalf("release sent %d times; it is not retry-safe", n)
		}
		deadline := time.Now().Add(3 * time.Second)
		for {
			st, err := c.Status(bg, id)
			if err == nil && st.Status != smartpay.Committed {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("release never landed: %+v %v", st, err)
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
	t.Run("commit retried after a delay returns the same purchase", func(t *testing.T) {
		e.Fault(t, sim.Fault{Method: sim.MethodCommit, Kind: sim.FaultDelay, Delay: 1200 * time.Millisecond})
		before := len(e.State().Purchases)
		r, err := c.Commit(bg, smartpay.CommitRequest{KassaPurchaseID: "2", QR: e.qr("u2")})
		if err != nil {
			t.Fatal(err)
		}
		st := e.State()
		if len(st.Purchases) != before+1 {
			t.Fatalf("%d purchases, want %d", len(st.Purchases), before+1)
		}
		if p, ok := st.Purchase(r.PurchaseID); !ok || p.KassaPurchaseID != "2" {
			t.Fatalf("purchase %+v", p)
		}
	})
	t.Run("503 on status is retried", func(t *testing.T) {
		id := commit(t, e, c, "3")
		e.Fault(t, sim.Fault{Method: sim.MethodStatus, Kind: sim.FaultStatus, Status: 503, Count: 2})
		before := e.Requests(sim.MethodStatus)
		if _, err := c.Status(bg, id); err != nil {
			t.Fatal(err)
		}
		if n := e.Requests(sim.MethodStatus) - before; n != 3 {
			t.Fatalf("%d status requests, want 3", n)
		}
	})
	t.Run("retries end", func(t *testing.T) {
		id := commit(t, e, c, "4")
		e.Fault(t, sim.Fault{Method: sim.MethodStatus, Kind: sim.FaultStatus, Status: 500, Count: 10})
		before := e.Requests(sim.MethodStatus)
		_, err := c.Status(bg, id)
		var ae *smartpay.APIError
		if !errors.As(err, &ae) || ae.HTTPStatus != 500 || ae.Code != smartpay.CodeInternal || !errors.Is(err, smartpay.ErrOutcomeUnknown) {
			t.Fatalf("got %#v", err)
		}
		if n := e.Requests(sim.MethodStatus) - before; n != 3 {
			t.Fatalf("%d status requests, want 3 (1 + 2 retries)", n)
		}
		e.Fault(t, sim.Fault{Method: sim.MethodStatus, Kind: sim.FaultStatus, Count: 1}) // clear
		_, _ = c.Status(bg, id)
	})
	t.Run("503 on release is outcome unknown, not retried", func(t *testing.T) {
		id := commit(t, e, c, "5")
		e.Fault(t, sim.Fault{Method: sim.MethodRelease, Kind: sim.FaultStatus, Status: 503})
		before := e.Requests(sim.MethodRelease)
		_, err := c.Release(bg, id, 100)
		wantCode(t, err, smartpay.CodeUnavailable)
		if !errors.Is(err, smartpay.ErrOutcomeUnknown) || e.Requests(sim.MethodRelease)-before != 1 {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("dropped connection", func(t *testing.T) {
		id := commit(t, e, c, "6")
		e.Fault(t, sim.Fault{Method: sim.MethodKassaStatus, Kind: sim.FaultDrop})
		err := c.KassaStatus(bg, id, smartpay.KassaCancel)
		if !errors.Is(err, smartpay.ErrOutcomeUnknown) {
			t.Fatalf("got %v", err)
		}
		e.Fault(t, sim.Fault{Method: sim.MethodCommit, Kind: sim.FaultDrop})
		if _, err := c.Commit(bg, smartpay.CommitRequest{KassaPurchaseID: "7", QR: e.qr("u7")}); err != nil {
			t.Fatalf("commit after a drop was not retried: %v", err)
		}
	})
	t.Run("cancelled context is not retried", func(t *testing.T) {
		id := commit(t, e, c, "8")
		e.Fault(t, sim.Fault{Method: sim.MethodStatus, Kind: sim.FaultDelay, Delay: 1200 * time.Millisecond, Count: 5})
		ctx, cancel := context.WithTimeout(bg, 100*time.Millisecond)
		defer cancel()
		before := e.Requests(sim.MethodStatus)
		_, err := c.Status(ctx, id)
		if !errors.Is(err, smartpay.ErrOutcomeUnknown) || e.Requests(sim.MethodStatus)-before != 1 {
			t.Fatalf("got %v after %d requests", err, e.Requests(sim.MethodStatus)-before)
		}
		e.Fault(t, sim.Fault{Method: sim.MethodStatus, Kind: sim.FaultStatus, Count: 1}) // clear
		_, _ = c.Status(bg, id)
	})
}

func TestUnavailable(t *testing.T) {
	e := newEnv(t, sim.Config{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	cfg := e.ClientConfig(1)
	cfg.URL = "https://" + addr
	c, err := smartpay.NewClient(cfg, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	err = c.Ping(bg)
	if !errors.Is(err, smartpay.ErrUnavailable) || errors.Is(err, smartpay.ErrOutcomeUnknown) || errors.Is(err, smartpay.ErrCertificate) ||
		smartpay.VerdictOf(err) != smartpay.Unavailable {
		t.Fatalf("got %v", err)
	}
}

func TestCertificates(t *testing.T) {
	e := newEnv(t, sim.Config{})
	other := t.TempDir()
	if _, err := sim.New(sim.Config{Dir: other}, nil); err != nil { // another CA and its kassa
		t.Fatal(err)
	}
	_, otherCert, otherKey := sim.KassaFiles(other, 1)
	otherCA, _, _ := sim.KassaFiles(other, 1)

	t.Run("client cert from another CA refused", func(t *testing.T) {
		cfg := e.ClientConfig(1)
		cfg.CertFile, cfg.KeyFile = otherCert, otherKey
		c, err := smartpay.NewClient(cfg, zaptest.NewLogger(t))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		err = c.Start(bg)
		if !errors.Is(err, smartpay.ErrCertificate) || !errors.Is(err, smartpay.ErrUnavailable) || smartpay.VerdictOf(err) != smartpay.Certificate {
			t.Fatalf("got %v", err)
		}
		if n := e.Requests(sim.MethodAuth); n != 0 {
			t.Fatalf("a login reached the service with a foreign certificate (%d)", n)
		}
	})
	t.Run("server not signed by our CA", func(t *testing.T) {
		cfg := e.ClientConfig(1)
		cfg.CAFile = otherCA
		c, err := smartpay.NewClient(cfg, zaptest.NewLogger(t))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		err = c.Ping(bg)
		if !errors.Is(err, smartpay.ErrCertificate) || !errors.Is(err, smartpay.ErrUnavailable) {
			t.Fatalf("got %v", err)
		}
		if n := e.Requests(sim.MethodPing); n != 0 {
			t.Fatalf("ping reached the service (%d) and was retried?", n)
		}
	})
	t.Run("key file readable by others refused", func(t *testing.T) {
		cfg := e.ClientConfig(2)
		if err := os.Chmod(cfg.KeyFile, 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := smartpay.NewClient(cfg, nil)
		if err == nil || !strings.Contains(err.Error(), "chmod 600") {
			t.Fatalf("got %v", err)
		}
		if err := os.Chmod(cfg.KeyFile, 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := smartpay.NewClient(cfg, nil); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("config checks", func(t *testing.T) {
		cfg := e.ClientConfig(1)
		cfg.URL = "http://" + strings.TrimPrefix(e.URL, "https://")
		if _, err := smartpay.NewClient(cfg, nil); err == nil {
			t.Fatal("plain http accepted")
		}
		cfg = e.ClientConfig(1)
		cfg.CAFile = cfg.KeyFile // no certificate in it
		if _, err := smartpay.NewClient(cfg, nil); err == nil {
			t.Fatal("CA file without a certificate accepted")
		}
	})
}

func TestErrorAnswersListEveryCode(t *testing.T) {
	e := newEnv(t, sim.Config{})
	c := e.NewClient(t)
	list, err := c.ErrorAnswers(bg)
	if err != nil {
		t.Fatal(err)
	}
	got := map[int]string{}
	for _, a := range list {
		got[a.Code] = a.Message
	}
	for _, code := range []int{smartpay.CodeBadRequest, smartpay.CodeSessionExpired, smartpay.CodeNotFound,
		smartpay.CodeBadState, smartpay.CodeQRAlreadyCommitted, smartpay.CodeOTPReused, smartpay.CodeStaleTimestamp,
		smartpay.CodeBadSignature, smartpay.CodeBadQR, smartpay.CodeBadAmount, smartpay.CodeRefundExceedsAmount,
		smartpay.CodeRefundNotAllowed, smartpay.CodeIdempotencyConflict, smartpay.CodePaymentDeclined,
		smartpay.CodeInternal, smartpay.CodeUnavailable, smartpay.CodeCommitExpired} {
		if got[code] == "" {
			t.Errorf("code %d not listed", code)
		}
	}
	if len(got) != 17 {
		t.Errorf("%d codes listed, want 17", len(got))
	}
	// Cached: no second request.
	if _, err := c.ErrorAnswers(bg); err != nil || e.Requests(sim.MethodErrorAnswers) != 1 {
		t.Fatalf("error_answers fetched %d times (%v)", e.Requests(sim.MethodErrorAnswers), err)
	}
	if err := c.Ping(bg); err != nil {
		t.Fatal(err)
	}
}

func TestCommitExpires(t *testing.T) {
	e := newEnv(t, sim.Config{CommitTTL: 50 * time.Millisecond})
	c := e.NewClient(t)
	id := commit(t, e, c, "1")
	time.Sleep(80 * time.Millisecond)
	st := waitStatus(t, c, id, smartpay.Expired)
	if st.Code != smartpay.CodeCommitExpired {
		t.Fatalf("%+v", st)
	}
	_, err := c.Release(bg, id, 100)
	wantCode(t, err, smartpay.CodeBadState)
}
