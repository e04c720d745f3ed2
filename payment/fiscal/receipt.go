package fiscal

import (
	"crypto/rand"
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"strconv"
	"unicode/utf8"
)

// Operation is what a receipt records (tag 1054, признак расчета).
type Operation uint8

// Operations kioskd issues. Buy operations (расход) are not needed.
const (
	Sell       Operation = 1 // приход: a sale
	SellReturn Operation = 2 // возврат прихода: a refund of a sale
)

// String names the operation ("sell", "sellReturn"), as logs and the
// simulators' state show it.
func (o Operation) String() string {
	switch o {
	case Sell:
		return "sell"
	case SellReturn:
		return "sellReturn"
	}
	return "operation(" + strconv.Itoa(int(o)) + ")"
}

// QRType is the receipt QR's n= value: 1 for a sale, 2 for its return.
func (o Operation) QRType() int { return int(o) }

// Valid reports whether o is Sell or SellReturn.
func (o Operation) Valid() bool { return o == Sell || o == SellReturn }

// TaxSystem is the seller's taxation system (tag 1055, СНО). Values are
// config-friendly; each backend maps them to its wire names.
type TaxSystem string

// Taxation systems.
const (
	TaxOSN              TaxSystem = "osn"                // общая
	TaxUSNIncome        TaxSystem = "usn_income"         // упрощённая, доходы
	TaxUSNIncomeOutcome TaxSystem = "usn_income_outcome" // упрощённая, доходы минус расходы
	TaxESN              TaxSystem = "esn"                // единый сельскохозяйственный налог
	TaxPatent           TaxSystem = "patent"             // патентная
	TaxENVD             TaxSystem = "envd"               // ЕНВД (abolished 2021; kept for old ККТ setups)
)

// Valid reports whether t is one of the taxation systems above.
func (t TaxSystem) Valid() bool {
	switch t {
	case TaxOSN, TaxUSNIncome, TaxUSNIncomeOutcome, TaxESN, TaxPatent, TaxENVD:
		return true
	}
	return false
}

// VAT is an item's VAT rate (tag 1199). Both ATOL protocols and Smart
// Pay's v2 receipt use these names [V: ATOL driver's TAX_TYPES,
// ili/atol-online VatType].
type VAT string

// VAT rates. The 5/7/22 % rates need a recent ККТ firmware.
const (
	VATNone VAT = "none"   // без НДС
	VAT0    VAT = "vat0"   // 0 %
	VAT5    VAT = "vat5"   // 5 %
	VAT7    VAT = "vat7"   // 7 %
	VAT10   VAT = "vat10"  // 10 %
	VAT20   VAT = "vat20"  // 20 %
	VAT22   VAT = "vat22"  // 22 %
	VAT105  VAT = "vat105" // 5/105
	VAT107  VAT = "vat107" // 7/107
	VAT110  VAT = "vat110" // 10/110
	VAT120  VAT = "vat120" // 20/120
	VAT122  VAT = "vat122" // 22/122
)

// Valid reports whether v is one of the rates above.
func (v VAT) Valid() bool {
	switch v {
	case VATNone, VAT0, VAT5, VAT7, VAT10, VAT20, VAT22, VAT105, VAT107, VAT110, VAT120, VAT122:
		return true
	}
	return false
}

// PaymentObject is what an item is (tag 1212, признак предмета расчета).
type PaymentObject string

// Payment objects a vending machine sells; backends map them to their
// wire names.
const (
	ObjectCommodity PaymentObject = "commodity" // товар
	ObjectExcise    PaymentObject = "excise"    // подакцизный товар
	ObjectJob       PaymentObject = "job"       // работа
	ObjectService   PaymentObject = "service"   // услуга
	ObjectPayment   PaymentObject = "payment"   // платёж
	ObjectAnother   PaymentObject = "another"   // иной предмет расчета
)

// Valid reports whether p is one of the payment objects above.
func (p PaymentObject) Valid() bool {
	switch p {
	case ObjectCommodity, ObjectExcise, ObjectJob, ObjectService, ObjectPayment, ObjectAnother:
		return true
	}
	return false
}

// Item is one receipt line. Money in kopecks. Every item is paid in full
// (способ расчета «полный расчет»): kioskd sells after payment.
type Item struct {
	Name     string        // tag 1030, at most 128 characters
	Price    int64         // per unit, kopecks
	Quantity Quantity      // thousandths of a unit; One for a piece
	Amount   int64         // price × quantity, rounded half up to the kopeck
	VAT      VAT           // rate
	Object   PaymentObject // [ObjectCommodity when empty]
}

// Limits the receipt checks before any call: inside them the arithmetic
// stays in int64 and the ККТ's field sizes hold [I: FFD tag sizes].
const (
	maxPrice    = 10_000_000_000 // 100 million rubles
	maxQuantity = 100_000 * One
	maxItems    = 100
	maxName     = 128
	maxText     = 256
	maxIDLen    = 64
)

// Receipt is what the caller asks the ККТ to register. ID is fixed by the
// caller before the first attempt and journaled with the sale: every call
// with the same ID returns the same fiscal document, never a second one.
type Receipt struct {
	ID              string    // NewID(); letters, digits and '-' only
	Items           []Item    // at least one
	Total           int64     // kopecks, the sum of the items' amounts; paid electronically
	Taxation        TaxSystem // tag 1055
	MachineNumber   string    // tag 1036, номер автомата
	PaymentsPlace   string    // tag 1187, место расчетов
	PaymentsAddress string    // tag 1009, адрес расчетов
	// Electronic asks for an electronic receipt (nothing printed): the
	// machine shows the receipt QR instead (54-ФЗ art. 1.2 p. 5.1–5.2).
	Electronic bool
	// CustomerContact is the buyer's e-mail or phone for the electronic
	// copy (tag 1008); optional. Personal data: never logged.
	CustomerContact string
}

// Validate checks the receipt before any call, so that a backend refusal
// means the ККТ's state, not our arithmetic.
func (r Receipt) Validate() error {
	if err := validID(r.ID); err != nil {
		return err
	}
	if !r.Taxation.Valid() {
		return fmt.Errorf("fiscal: receipt %s: unknown taxation system %q (osn, usn_income, usn_income_outcome, esn, patent, envd)", r.ID, r.Taxation)
	}
	if len(r.Items) == 0 || len(r.Items) > maxItems {
		return fmt.Errorf("fiscal: receipt %s: %d items; want 1 to %d", r.ID, len(r.Items), maxItems)
	}
	var sum int64
	for i, it := range r.Items {
		if err := it.validate(); err != nil {
			return fmt.Errorf("fiscal: receipt %s: item %d: %w", r.ID, i+1, err)
		}
		sum += it.Amount
	}
	if sum != r.Total || r.Total <= 0 {
		return fmt.Errorf("fiscal: receipt %s: total %s is not the sum of the items %s", r.ID, Rubles(r.Total), Rubles(sum))
	}
	for _, f := range [...]struct{ name, v string }{{"machine number", r.MachineNumber}, {"payments place", r.PaymentsPlace},
		{"payments address", r.PaymentsAddress}, {"customer contact", r.CustomerContact}} {
		if utf8.RuneCountInString(f.v) > maxText || !utf8.ValidString(f.v) {
			return fmt.Errorf("fiscal: receipt %s: %s is not valid UTF-8 of at most %d characters", r.ID, f.name, maxText)
		}
	}
	return nil
}

func (it Item) validate() error {
	if n := utf8.RuneCountInString(it.Name); n == 0 || n > maxName || !utf8.ValidString(it.Name) {
		return fmt.Errorf("name must be 1 to %d characters", maxName)
	}
	if it.Price <= 0 || it.Price > maxPrice {
		return fmt.Errorf("price %s out of range", Rubles(it.Price))
	}
	if it.Quantity <= 0 || it.Quantity > maxQuantity {
		return fmt.Errorf("quantity %s out of range", it.Quantity)
	}
	if want := lineAmount(it.Price, it.Quantity); it.Amount != want {
		return fmt.Errorf("amount %s is not price %s × quantity %s = %s", Rubles(it.Amount), Rubles(it.Price), it.Quantity, Rubles(want))
	}
	if !it.VAT.Valid() {
		return fmt.Errorf("unknown VAT rate %q", it.VAT)
	}
	if it.Object != "" && !it.Object.Valid() {
		return fmt.Errorf("unknown payment object %q", it.Object)
	}
	return nil
}

// ObjectOrDefault returns the item's payment object, ObjectCommodity when
// unset.
func (it Item) ObjectOrDefault() PaymentObject {
	if it.Object == "" {
		return ObjectCommodity
	}
	return it.Object
}

func validID(id string) error {
	if id == "" || len(id) > maxIDLen {
		return fmt.Errorf("fiscal: receipt id %q: want 1 to %d characters; make one with fiscal.NewID", id, maxIDLen)
	}
	for _, c := range id {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '-') {
			return fmt.Errorf("fiscal: receipt id %q: only letters, digits and '-'; make one with fiscal.NewID", id)
		}
	}
	return nil
}

// NewID returns a random UUID (version 4) for a new receipt. Journal it
// before the first attempt.
func NewID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return formatUUID(b)
}

// AttemptID is the backend id of attempt n (from 0) of the receipt with id:
// attempt 0 uses id itself, later ones a UUID derived from id and n (name
// based, version 5 layout). Backends move to the next attempt only after
// the previous one was definitely refused (no document made), so the ids
// of one receipt form a chain that a restart walks again from the start.
func AttemptID(id string, n int) string {
	if n == 0 {
		return id
	}
	sum := sha1.Sum([]byte("kioskd-fiscal-attempt\x00" + id + "\x00" + strconv.Itoa(n)))
	var b [16]byte
	copy(b[:], sum[:16])
	b[6] = b[6]&0x0f | 0x50
	b[8] = b[8]&0x3f | 0x80
	return formatUUID(b)
}

func formatUUID(b [16]byte) string {
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}
