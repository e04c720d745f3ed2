package fiscal

import (
	"path/filepath"
	"time"

	"go.uber.org/zap"

	"github.com/kioskd/kioskd/scanner/settings"
)

// Providers is the registry of the fiscal: section of devices.yaml: its
// "provider" key picks none, atol (fiscal/atol) or atol-online
// (fiscal/atolonline); each declares its own keys. A backend package
// registers itself when it is linked in.
var Providers = settings.NewRegistry[Settings]("fiscal provider", "provider", false)

func init() { settings.Register(Providers, "none", None{}) }

// Settings is one provider's fiscal: section.
type Settings interface {
	// Open makes the provider, reading its secrets from their files (a
	// relative name is under dir, the configuration file's directory). It
	// makes no call. None returns a nil Provider: the host sends the fiscal
	// data.
	Open(dir string, log *zap.Logger) (Provider, error)
	// Receipt returns what every receipt says besides the sale.
	Receipt() ReceiptSettings
}

// None is provider none: kioskd issues no receipts; the host application
// sends the fiscal data of each sale (POST /v1/sale/fiscal). It has no keys.
type None struct{}

// Fields declares no keys.
func (*None) Fields() []settings.Field { return nil }

// Open returns no provider.
func (None) Open(string, *zap.Logger) (Provider, error) { return nil, nil }

// Receipt returns the zero settings.
func (None) Receipt() ReceiptSettings { return ReceiptSettings{} }

var _ Settings = None{}

// DefaultItem names what was sold when neither the host nor the vending
// machine names it.
const DefaultItem = "Товар"

// ReceiptSettings are the keys every provider shares: what a receipt says
// besides the sale, and how long kioskd gives the ККТ. A backend's
// settings embed it (with DefaultReceipt as the starting value) and append
// its Fields to their own.
type ReceiptSettings struct {
	Taxation      TaxSystem     // taxation: tag 1055 (required)
	VAT           VAT           // vat: every item's rate (required)
	Object        PaymentObject // payment_object: tag 1212 [commodity]
	Item          string        // item: the name when the host or machine names none [DefaultItem]
	MachineNumber string        // machine_number: tag 1036, required in automatic mode
	Place         string        // place: tag 1187, where the machine stands
	Address       string        // address: tag 1009, the address of the settlement
	ShiftMargin   time.Duration // shift_margin: renew a shift this long before its 24 h end [1h]
	Wait          time.Duration // wait: one attempt at a receipt, the ККТ's work included [1m]
}

// DefaultReceipt is the starting value of ReceiptSettings.
var DefaultReceipt = ReceiptSettings{Object: ObjectCommodity, Item: DefaultItem, ShiftMargin: time.Hour, Wait: time.Minute}

// Receipt returns c (promoted to the settings that embed it).
func (c ReceiptSettings) Receipt() ReceiptSettings { return c }

// Fields declares the shared keys.
func (c *ReceiptSettings) Fields() []settings.Field {
	text := func(key string, dst *string, max int) settings.Field {
		return settings.Text(key, dst, func(s string) error { return checkText(s, max) })
	}
	return []settings.Field{
		settings.Enum("taxation", (*string)(&c.Taxation), names(TaxOSN, TaxUSNIncome, TaxUSNIncomeOutcome, TaxESN, TaxPatent, TaxENVD)...).
			Required("required: the seller's taxation system as registered for the ККТ"),
		settings.Enum("vat", (*string)(&c.VAT), names(VATNone, VAT0, VAT5, VAT7, VAT10, VAT20, VAT22, VAT105, VAT107, VAT110, VAT120, VAT122)...).
			Required("required: the VAT rate of what the machine sells (none: без НДС)"),
		settings.Enum("payment_object", (*string)(&c.Object), names(ObjectCommodity, ObjectExcise, ObjectJob, ObjectService, ObjectPayment, ObjectAnother)...),
		settings.Text("item", &c.Item, CheckName),
		text("machine_number", &c.MachineNumber, 20).Required("required: the machine's number (tag 1036), as registered with the tax service"),
		text("place", &c.Place, maxText).Required("required: where the machine stands (tag 1187), as registered"),
		text("address", &c.Address, maxText).Required("required: the address of the settlement (tag 1009), as registered"),
		settings.DurationUpTo("shift_margin", &c.ShiftMargin, 12*time.Hour),
		settings.DurationUpTo("wait", &c.Wait, 10*time.Minute),
	}
}

func names[T ~string](vs ...T) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = string(v)
	}
	return out
}

// SecretIn reads a credential with ReadSecret from path, a name relative
// to dir unless absolute.
func SecretIn(dir, path string) (string, error) {
	if !filepath.IsAbs(path) {
		path = filepath.Join(dir, path)
	}
	return ReadSecret(path)
}
