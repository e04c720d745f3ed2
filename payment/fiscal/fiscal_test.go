package fiscal

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestRubles(t *testing.T) {
	for k, want := range map[int64]string{0: "0.00", 5: "0.05", 100: "1.00", 12345: "123.45", -150: "-1.50",
		-5: "-0.05", 9_223_372_036_854_775_807: "92233720368547758.07", -9_223_372_036_854_775_808: "-92233720368547758.08"} {
		if got := Rubles(k); got != want {
			t.Errorf("Rubles(%d) = %q, want %q", k, got, want)
		}
	}
}

func TestParseRubles(t *testing.T) {
	for s, want := range map[string]int64{"123.45": 12345, "123.4": 12340, "123": 12300, "0.05": 5, "1.2E2": 12000,
		"72.33999999999999": 7234, "72.34000000000001": 7234, "-1.5": -150, "390.7500": 39075} {
		got, err := ParseRubles(s)
		if err != nil || got != want {
			t.Errorf("ParseRubles(%q) = %d, %v; want %d", s, got, err, want)
		}
	}
	for _, s := range []string{"", "abc", "1.234", "1/3", "1e30", "0.001"} {
		if got, err := ParseRubles(s); err == nil {
			t.Errorf("ParseRubles(%q) = %d, want an error", s, got)
		}
	}
	// Every kopeck amount survives the round trip through the decimal text.
	for k := int64(-1000); k <= 100_000; k += 7 {
		if got, err := ParseRubles(Rubles(k)); err != nil || got != k {
			t.Fatalf("round trip %d: %d %v", k, got, err)
		}
	}
}

func TestQuantity(t *testing.T) {
	for q, want := range map[Quantity]string{One: "1", 1500: "1.5", 125: "0.125", 2000: "2", 10: "0.01", -1500: "-1.5"} {
		if got := q.String(); got != want {
			t.Errorf("%d.String() = %q, want %q", int64(q), got, want)
		}
		if back, err := ParseQuantity(want); err != nil || back != q {
			t.Errorf("ParseQuantity(%q) = %d %v", want, back, err)
		}
	}
	if _, err := ParseQuantity("1.0005"); err == nil {
		t.Error("four decimals accepted")
	}
	if One.Float64() != 1 || Quantity(1500).Float64() != 1.5 {
		t.Error("Float64")
	}
}

func validReceipt() Receipt {
	return Receipt{
		ID:       NewID(),
		Taxation: TaxUSNIncome,
		Items: []Item{
			{Name: "Кофе", Price: 15000, Quantity: One, Amount: 15000, VAT: VATNone},
			{Name: "Орехи", Price: 33333, Quantity: 1500, Amount: 50000, VAT: VAT20, Object: ObjectCommodity},
		},
		Total:      65000,
		Electronic: true,
	}
}

func TestReceiptValidate(t *testing.T) {
	if err := validReceipt().Validate(); err != nil {
		t.Fatal(err)
	}
	cases := map[string]func(*Receipt){
		"empty id":        func(r *Receipt) { r.ID = "" },
		"bad id":          func(r *Receipt) { r.ID = "a b" },
		"long id":         func(r *Receipt) { r.ID = strings.Repeat("a", 65) },
		"no items":        func(r *Receipt) { r.Items = nil },
		"total mismatch":  func(r *Receipt) { r.Total++ },
		"amount mismatch": func(r *Receipt) { r.Items[1].Amount = 49999; r.Total = 64999 },
		"zero price":      func(r *Receipt) { r.Items[0].Price = 0 },
		"zero quantity":   func(r *Receipt) { r.Items[0].Quantity = 0 },
		"no name":         func(r *Receipt) { r.Items[0].Name = "" },
		"long name":       func(r *Receipt) { r.Items[0].Name = strings.Repeat("я", 129) },
		"bad vat":         func(r *Receipt) { r.Items[0].VAT = "vat18" },
		"bad object":      func(r *Receipt) { r.Items[0].Object = "lottery" },
		"bad taxation":    func(r *Receipt) { r.Taxation = "usn" },
		"long address":    func(r *Receipt) { r.PaymentsAddress = strings.Repeat("x", 257) },
		"huge price":      func(r *Receipt) { r.Items[0].Price = maxPrice + 1 },
	}
	for name, mutate := range cases {
		r := validReceipt()
		r.Items = append([]Item(nil), r.Items...)
		mutate(&r)
		if err := r.Validate(); err == nil || !strings.HasPrefix(err.Error(), "fiscal: ") {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestIDs(t *testing.T) {
	a, b := NewID(), NewID()
	if a == b || len(a) != 36 || a[14] != '4' || validID(a) != nil {
		t.Fatalf("NewID: %q %q", a, b)
	}
	if AttemptID(a, 0) != a {
		t.Fatal("attempt 0 is not the id")
	}
	seen := map[string]bool{a: true}
	for n := 1; n < 50; n++ {
		id := AttemptID(a, n)
		if id != AttemptID(a, n) || seen[id] || id[14] != '5' || validID(id) != nil {
			t.Fatalf("attempt %d: %q", n, id)
		}
		seen[id] = true
	}
	if AttemptID(a, 1) == AttemptID(b, 1) {
		t.Fatal("attempts of two receipts collide")
	}
}

func testResult() Result {
	return Result{
		ID: "x", Operation: Sell, RegistrationNumber: "0000000001002292", FNNumber: "9999078900000961",
		FDNumber: 71, FiscalSign: "1494325660", DateTime: time.Date(2018, 3, 6, 13, 52, 41, 0, time.FixedZone("MSK", 3*3600)),
		ShiftNumber: 12, ReceiptNumber: 1, Total: 39075,
	}
}

func TestQR(t *testing.T) {
	r := testResult()
	if got, want := r.QR(), "t=20180306T1352&s=390.75&fn=9999078900000961&i=71&fp=1494325660&n=1"; got != want {
		t.Fatalf("QR = %q, want %q", got, want)
	}
	r.Operation, r.Total, r.FDNumber = SellReturn, 100, 5
	// The QR shows the ККТ's local time even when the value is in UTC.
	r.DateTime = time.Date(2024, 12, 31, 21, 5, 0, 0, time.UTC).In(time.FixedZone("MSK", 3*3600))
	if got, want := r.QR(), "t=20250101T0005&s=1.00&fn=9999078900000961&i=5&fp=1494325660&n=2"; got != want {
		t.Fatalf("QR = %q, want %q", got, want)
	}
}

func TestConfirm(t *testing.T) {
	rc := Receipt{Total: 39075}
	if err := Confirm(Sell, rc, testResult()); err != nil {
		t.Fatal(err)
	}
	cases := map[string]func(*Result){
		"operation":     func(r *Result) { r.Operation = SellReturn },
		"short reg":     func(r *Result) { r.RegistrationNumber = "1002292" },
		"fn letters":    func(r *Result) { r.FNNumber = "99990789000009x1" },
		"no fd":         func(r *Result) { r.FDNumber = 0 },
		"no sign":       func(r *Result) { r.FiscalSign = "" },
		"sign too big":  func(r *Result) { r.FiscalSign = "4294967296" },
		"no date":       func(r *Result) { r.DateTime = time.Time{} },
		"total differs": func(r *Result) { r.Total = 39076 },
	}
	for name, mutate := range cases {
		r := testResult()
		mutate(&r)
		if err := Confirm(Sell, rc, r); err == nil {
			t.Errorf("%s accepted", name)
		}
	}
}

func TestErrorKinds(t *testing.T) {
	cause := errors.New("connection refused")
	err := fmt.Errorf("flow: %w", &Error{Kind: Unreachable, Provider: "atol", Op: "sell", ID: "id1", Err: cause})
	if !errors.Is(err, ErrUnreachable) || errors.Is(err, ErrRefused) || !errors.Is(err, cause) || KindOf(err) != Unreachable || Definite(err) {
		t.Fatalf("unreachable: %v", err)
	}
	if got := err.Error(); got != "flow: atol: sell id1: unreachable: connection refused" {
		t.Fatalf("text %q", got)
	}
	ref := &Error{Kind: Refused, Provider: "atol", Op: "sell", Code: 118, Text: "Неисправимая ошибка ФН", FN: true}
	if !errors.Is(ref, ErrRefused) || !Definite(ref) || ref.Error() != "atol: sell: refused (code 118): Неисправимая ошибка ФН" {
		t.Fatalf("refused: %v", ref)
	}
	if !Definite(&Error{Kind: ShiftExpired}) || Definite(&Error{Kind: Pending}) || Definite(&Error{Kind: Malformed}) || KindOf(cause) != 0 {
		t.Fatal("Definite")
	}
}

func TestShiftDue(t *testing.T) {
	now := time.Date(2025, 5, 1, 12, 0, 0, 0, time.UTC)
	cases := []struct {
		s    Shift
		want ShiftAction
	}{
		{Shift{State: ShiftIsClosed}, ShiftOpenNew},
		{Shift{State: ShiftIsExpired}, ShiftRenew},
		{Shift{State: ShiftIsOpen}, ShiftKeep},
		{Shift{State: ShiftIsOpen, Expires: now.Add(2 * time.Hour)}, ShiftKeep},
		{Shift{State: ShiftIsOpen, Expires: now.Add(time.Hour)}, ShiftRenew},
		{Shift{State: ShiftIsOpen, Expires: now.Add(-time.Minute)}, ShiftRenew},
	}
	for _, c := range cases {
		if got := ShiftDue(c.s, now, time.Hour); got != c.want {
			t.Errorf("ShiftDue(%+v) = %v, want %v", c.s, got, c.want)
		}
	}
}

func TestReadSecret(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "pw")
	if err := os.WriteFile(p, []byte("s3cret\nsecond line\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if s, err := ReadSecret(p); err != nil || s != "s3cret" {
		t.Fatalf("%q %v", s, err)
	}
	if err := os.Chmod(p, 0o640); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadSecret(p); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("readable by group: %v", err)
	}
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadSecret(empty); err == nil {
		t.Fatal("empty secret accepted")
	}
	if _, err := ReadSecret(filepath.Join(dir, "none")); err == nil {
		t.Fatal("missing file accepted")
	}
}

// Zero fields take the backend's defaults; PollMax is never below PollFirst.
func TestTimingOr(t *testing.T) {
	d := Timing{CallTimeout: 5 * time.Second, Wait: 30 * time.Second, PollFirst: 50 * time.Millisecond, PollMax: 500 * time.Millisecond, MaxAttempts: 100}
	if got := (Timing{}).Or(d); got != d {
		t.Errorf("zero: %+v", got)
	}
	got := Timing{Wait: time.Second, PollFirst: time.Second}.Or(d)
	want := Timing{CallTimeout: 5 * time.Second, Wait: time.Second, PollFirst: time.Second, PollMax: time.Second, MaxAttempts: 100}
	if got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
}
