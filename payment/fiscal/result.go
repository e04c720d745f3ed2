package fiscal

import (
	"fmt"
	"strconv"
	"time"
)

// Result is a fiscal document the ККТ confirmed. A backend returns it only
// when every field the receipt QR and Smart Pay need is present; otherwise
// it returns a Malformed error and nothing to forward.
type Result struct {
	ID                 string    // the attempt id the document was made under (AttemptID)
	Operation          Operation // Sell or SellReturn
	RegistrationNumber string    // tag 1037, регистрационный номер ККТ: 16 digits
	FNNumber           string    // tag 1041, номер ФН: 16 digits
	FDNumber           int64     // tag 1040, номер фискального документа
	FiscalSign         string    // tag 1077, фискальный признак документа (ФПД): decimal, ≤ 10 digits
	DateTime           time.Time // tag 1012, in the ККТ's own zone, as the receipt shows it
	ShiftNumber        int       // tag 1038
	ReceiptNumber      int       // tag 1042, номер чека за смену
	Total              int64     // tag 1020, kopecks
	FNSURL             string    // tag 1060, the tax service's site
	OFDReceiptURL      string    // the receipt at the OFD, when the cloud gives one
}

// QR is the receipt's QR string per 54-ФЗ / ФНС:
// t=YYYYMMDDTHHMM&s=<rubles.kopecks>&fn=<FN>&i=<FD>&fp=<fiscal sign>&n=<1|2>,
// the time in the ККТ's own zone (as printed on the receipt), n=2 for a
// return. The customer's phone checks the receipt with it.
func (r Result) QR() string {
	return "t=" + r.DateTime.Format("20060102T1504") +
		"&s=" + Rubles(r.Total) +
		"&fn=" + r.FNNumber +
		"&i=" + strconv.FormatInt(r.FDNumber, 10) +
		"&fp=" + r.FiscalSign +
		"&n=" + strconv.Itoa(r.Operation.QRType())
}

// Confirm checks that res is a complete confirmation of receipt r made as
// op: the fields Smart Pay and the QR need are present and well formed,
// and the ККТ's total is the receipt's. The returned text says what is
// missing; backends wrap it as a Malformed error.
func Confirm(op Operation, r Receipt, res Result) error {
	switch {
	case res.Operation != op:
		return fmt.Errorf("document is a %s, not a %s", res.Operation, op)
	case !digits(res.RegistrationNumber, 16, 16):
		return fmt.Errorf("registration number %q is not 16 digits", res.RegistrationNumber)
	case !digits(res.FNNumber, 16, 16):
		return fmt.Errorf("FN number %q is not 16 digits", res.FNNumber)
	case res.FDNumber <= 0:
		return fmt.Errorf("FD number %d missing", res.FDNumber)
	case res.FiscalSign == "":
		return fmt.Errorf("fiscal sign missing")
	case !validSign(res.FiscalSign):
		return fmt.Errorf("fiscal sign %q is not a 32-bit decimal", res.FiscalSign)
	case res.DateTime.IsZero():
		return fmt.Errorf("document date missing")
	case res.Total != r.Total:
		return fmt.Errorf("the ККТ registered %s, the receipt is %s", Rubles(res.Total), Rubles(r.Total))
	}
	return nil
}

func digits(s string, minLen, maxLen int) bool {
	if len(s) < minLen || len(s) > maxLen {
		return false
	}
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// validSign: the ФПД is a 32-bit number printed in decimal.
func validSign(s string) bool {
	if !digits(s, 1, 10) {
		return false
	}
	v, err := strconv.ParseUint(s, 10, 64)
	return err == nil && v <= 1<<32-1
}

// ShiftState is the state of the ККТ's shift (смена).
type ShiftState string

// Shift states [V: ATOL getShiftStatus "opened"/"closed"/"expired"].
const (
	ShiftIsOpen    ShiftState = "open"
	ShiftIsClosed  ShiftState = "closed"
	ShiftIsExpired ShiftState = "expired" // open for more than 24 h: receipts are refused until it is closed
)

// Shift is the ККТ's shift.
type Shift struct {
	State   ShiftState
	Number  int
	Expires time.Time // when the 24 h run out; zero when closed or unknown
}

// Status is what Check found.
type Status struct {
	Provider string // "atol", "atolonline"
	Detail   string // what answered: the web server URL, the cloud group…
	Shift    *Shift // nil when the backend keeps shifts itself (cloud)
}
