package atolonline

import (
	"go.uber.org/zap"

	"github.com/kioskd/kioskd/payment/fiscal"
	"github.com/kioskd/kioskd/payment/fiscal/internal/backend"
	"github.com/kioskd/kioskd/scanner/settings"
)

func init() {
	settings.Register(fiscal.Providers, "atol-online", Settings{ReceiptSettings: fiscal.DefaultReceipt, URL: DefaultURL})
}

// Settings is the fiscal: section with provider atol-online: a cloud
// kassa of ATOL Online, besides the keys every provider has.
type Settings struct {
	fiscal.ReceiptSettings
	URL          string // url: the API [DefaultURL]
	Group        string // group: the cloud kassa's group_code
	Login        string // login: for the token
	PasswordFile string // password_file: its password, first line, mode 0600
	INN          string // inn: the seller's INN (tag 1018)
	CompanyEmail string // company_email: the seller's e-mail (tag 1117)
	ClientEmail  string // client_email: where the buyer's copy goes when none is known
}

// Fields declares the cloud's keys after the shared ones.
func (s *Settings) Fields() []settings.Field {
	return append(s.ReceiptSettings.Fields(),
		settings.Text("url", &s.URL, backend.CheckURL),
		settings.String("group", &s.Group).Required("required: the cloud kassa's group code"),
		settings.String("login", &s.Login).Required("required: the cloud kassa's login"),
		settings.String("password_file", &s.PasswordFile).Required("required: a file (mode 0600) with the login's password"),
		settings.String("inn", &s.INN).Required("required: the seller's INN (tag 1018)"),
		settings.String("company_email", &s.CompanyEmail).Required("required: the seller's e-mail (tag 1117)"),
		settings.String("client_email", &s.ClientEmail),
	)
}

// Open reads the password file and makes the client.
func (s Settings) Open(dir string, log *zap.Logger) (fiscal.Provider, error) {
	pw, err := fiscal.SecretIn(dir, s.PasswordFile)
	if err != nil {
		return nil, err
	}
	return New(Config{URL: s.URL, Group: s.Group, Login: s.Login, Password: pw, INN: s.INN,
		CompanyEmail: s.CompanyEmail, ClientEmail: s.ClientEmail}, log)
}

var _ fiscal.Settings = Settings{}
