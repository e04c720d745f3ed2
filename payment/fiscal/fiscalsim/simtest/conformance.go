package simtest

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kioskd/kioskd/payment/fiscal"
	"github.com/kioskd/kioskd/payment/fiscal/fiscalsim"
)

// Backend is one fiscal backend wired to its simulator, for Conformance.
type Backend struct {
	Provider fiscal.Provider
	Sim      interface {
		State() fiscalsim.State
		InjectFault(fiscalsim.Fault) error
	}
	// Submit and Query name the simulator methods that take a receipt
	// ("post", "operation") and answer its state ("get", "report").
	Submit, Query string
	// Extra, if set, checks backend-specific fields of a confirmed result.
	Extra func(t *testing.T, res fiscal.Result, rc fiscalsim.Receipt)
}

// NewReceipt returns a valid two-item receipt with a fresh id.
func NewReceipt() fiscal.Receipt {
	return fiscal.Receipt{
		ID:       fiscal.NewID(),
		Taxation: fiscal.TaxUSNIncome,
		Items: []fiscal.Item{
			{Name: "Капучино 0,3", Price: 14950, Quantity: fiscal.One, Amount: 14950, VAT: fiscal.VATNone},
			{Name: "Сахар", Price: 333, Quantity: 1500, Amount: 500, VAT: fiscal.VAT20, Object: fiscal.ObjectCommodity},
		},
		Total:           15450,
		MachineNumber:   "VM-0042",
		PaymentsPlace:   "Вендинговый автомат, холл 1 этажа",
		PaymentsAddress: "г. Москва, ул. Примерная, д. 1",
		Electronic:      true,
	}
}

// Conformance runs what every backend must do over real HTTP against its
// simulator: one document per receipt id whatever is retried or lost,
// polling until ready, bounded waiting, refusals that a later call with
// the same id gets past, and no result from a confirmation without the
// fiscal sign. newBackend starts a fresh simulator and client whose wait
// for one receipt is wait.
func Conformance(t *testing.T, newBackend func(t *testing.T, wait time.Duration) Backend) {
	run := func(name string, wait time.Duration, test func(t *testing.T, b Backend)) {
		t.Run(name, func(t *testing.T) { test(t, newBackend(t, wait)) })
	}
	const wait = 5 * time.Second
	run("SellOnceAndRetry", wait, func(t *testing.T, b Backend) {
		r := NewReceipt()
		res := b.sell(t, r, r.ID)
		if again, err := b.Provider.Sell(Context(t), r); err != nil || again != res {
			t.Fatalf("retry: %+v %v, want %+v", again, err, res)
		}
		b.want(t, r.ID, 1, 2)
	})
	run("LostAnswerToSubmit", wait, func(t *testing.T, b Backend) {
		r := NewReceipt()
		b.inject(t, fiscalsim.Fault{Method: b.Submit, Kind: fiscalsim.FaultLoseAnswer})
		if _, err := b.Provider.Sell(Context(t), r); !errors.Is(err, fiscal.ErrUnreachable) {
			t.Fatalf("lost answer: %v", err)
		}
		b.sell(t, r, r.ID)
		b.want(t, r.ID, 1, 2)
	})
	run("BadAnswersWhilePolling", wait, func(t *testing.T, b Backend) {
		r := NewReceipt()
		for _, k := range []fiscalsim.FaultKind{fiscalsim.FaultLoseAnswer, fiscalsim.FaultDrop, fiscalsim.FaultStatus} {
			b.inject(t, fiscalsim.Fault{Method: b.Query, Kind: k})
		}
		b.sell(t, r, r.ID) // three bad queries in a row are ridden out within the wait
		b.want(t, r.ID, 1, 1)
	})
	run("SellReturn", wait, func(t *testing.T, b Backend) {
		r := NewReceipt()
		res, err := b.Provider.SellReturn(Context(t), r)
		if err != nil {
			t.Fatal(err)
		}
		rc := b.confirmed(t, res, r.ID)
		if rc.Type != "sellReturn" || res.Operation != fiscal.SellReturn || !strings.HasSuffix(res.QR(), "&n=2") {
			t.Fatalf("return: %+v %s", rc, res.QR())
		}
	})
	run("PollsUntilReady", wait, func(t *testing.T, b Backend) {
		r := NewReceipt()
		b.inject(t, fiscalsim.Fault{Method: b.Submit, Kind: fiscalsim.FaultPending, Polls: 3})
		b.sell(t, r, r.ID)
		if task, _ := b.Sim.State().Task(r.ID); task.Polls != 3 {
			t.Fatalf("polls %d, want 3", task.Polls)
		}
	})
	run("NeverCompletes", 300*time.Millisecond, func(t *testing.T, b Backend) {
		r := NewReceipt()
		b.inject(t, fiscalsim.Fault{Method: b.Submit, Kind: fiscalsim.FaultPending, Polls: -1})
		for i := 0; i < 2; i++ {
			res, err := b.Provider.Sell(Context(t), r)
			var fe *fiscal.Error
			if !errors.As(err, &fe) || fe.Kind != fiscal.Pending || res != (fiscal.Result{}) {
				t.Fatalf("call %d: %+v %v", i, res, err)
			}
		}
		b.want(t, r.ID, 0, 2)
		if n := len(b.Sim.State().Tasks); n != 1 {
			t.Fatalf("%d tasks", n)
		}
	})
	run("MalformedAnswer", wait, func(t *testing.T, b Backend) {
		r := NewReceipt()
		b.inject(t, fiscalsim.Fault{Method: b.Query, Kind: fiscalsim.FaultMalformed})
		if _, err := b.Provider.Sell(Context(t), r); !errors.Is(err, fiscal.ErrMalformed) || !strings.Contains(err.Error(), "not JSON") {
			t.Fatalf("malformed: %v", err)
		}
		b.sell(t, r, r.ID)
		b.want(t, r.ID, 1, 2)
	})
	run("RefusedThenRetry", wait, func(t *testing.T, b Backend) {
		r := NewReceipt()
		b.inject(t, fiscalsim.Fault{Method: b.Submit, Kind: fiscalsim.FaultKKTError, Code: 118, Text: "Неисправимая ошибка ФН"})
		_, err := b.Provider.Sell(Context(t), r)
		var fe *fiscal.Error
		if !errors.As(err, &fe) || fe.Kind != fiscal.Refused || fe.Code != 118 || !strings.Contains(fe.Text, "Неисправимая ошибка ФН") {
			t.Fatalf("refused: %v", err)
		}
		if n := len(b.Sim.State().Receipts); n != 0 {
			t.Fatalf("a refused receipt was registered: %d", n)
		}
		// The cause is gone: the same receipt id tries anew under attempt 1.
		b.sell(t, r, fiscal.AttemptID(r.ID, 1))
		b.want(t, fiscal.AttemptID(r.ID, 1), 1, 1)
	})
	run("MissingFiscalSign", wait, func(t *testing.T, b Backend) {
		r := NewReceipt()
		b.inject(t, fiscalsim.Fault{Method: b.Query, Kind: fiscalsim.FaultNoSign})
		res, err := b.Provider.Sell(Context(t), r)
		if !errors.Is(err, fiscal.ErrMalformed) || !strings.Contains(err.Error(), "fiscal sign missing") || res != (fiscal.Result{}) {
			t.Fatalf("no sign: %+v %v", res, err)
		}
		// The ККТ made the document; asking again gets its complete data.
		b.sell(t, r, r.ID)
		b.want(t, r.ID, 1, 2)
	})
}

// Context is a test's context for one call: cancelled at cleanup, with a
// deadline far beyond any wait the tests set.
func Context(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func (b Backend) inject(t *testing.T, f fiscalsim.Fault) {
	t.Helper()
	if err := b.Sim.InjectFault(f); err != nil {
		t.Fatal(err)
	}
}

// sell sells r and checks it was made under id.
func (b Backend) sell(t *testing.T, r fiscal.Receipt, id string) fiscal.Result {
	t.Helper()
	res, err := b.Provider.Sell(Context(t), r)
	if err != nil {
		t.Fatal(err)
	}
	rc := b.confirmed(t, res, id)
	if rc.Type != "sell" || res.Operation != fiscal.Sell || res.QR() != qr(rc) {
		t.Fatalf("sale %+v, QR %s", rc, res.QR())
	}
	return res
}

func (b Backend) confirmed(t *testing.T, res fiscal.Result, id string) fiscalsim.Receipt {
	t.Helper()
	rc := Confirmed(t, b.Sim.State(), res, id)
	if b.Extra != nil {
		b.Extra(t, res, rc)
	}
	return rc
}

// want checks the number of documents in the simulator and how often id
// was submitted.
func (b Backend) want(t *testing.T, id string, receipts, posts int) {
	t.Helper()
	st := b.Sim.State()
	task, _ := st.Task(id)
	if len(st.Receipts) != receipts || task.Posts != posts {
		t.Fatalf("%d receipts, %d submissions of %s; want %d and %d", len(st.Receipts), task.Posts, id, receipts, posts)
	}
}

// qr is the receipt QR string written from the simulator's own data.
func qr(rc fiscalsim.Receipt) string {
	f := rc.Fiscal
	n := "1"
	if rc.Type == "sellReturn" {
		n = "2"
	}
	return "t=" + f.DateTime.Format("20060102T1504") + "&s=" + fiscal.Rubles(rc.Total) + "&fn=" + f.FNNumber +
		"&i=" + strconv.FormatInt(f.FDNumber, 10) + "&fp=" + f.FiscalSign + "&n=" + n
}
