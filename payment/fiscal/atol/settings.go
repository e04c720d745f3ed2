package atol

import (
	"go.uber.org/zap"

	"github.com/kioskd/kioskd/payment/fiscal"
	"github.com/kioskd/kioskd/payment/fiscal/internal/backend"
	"github.com/kioskd/kioskd/scanner/settings"
)

func init() {
	settings.Register(fiscal.Providers, "atol", Settings{ReceiptSettings: fiscal.DefaultReceipt, URL: DefaultURL})
}

// Settings is the fiscal: section with provider atol: the ККТ behind the
// ATOL driver's web server, besides the keys every provider has.
type Settings struct {
	fiscal.ReceiptSettings
	URL          string // url: the web server [DefaultURL]
	Login        string // login: when the web server has accounts
	PasswordFile string // password_file: its password, first line, mode 0600
	Operator     string // operator: the cashier's name (tag 1021); may stay empty on a machine
	OperatorINN  string // operator_inn: the cashier's INN (tag 1203)
}

// Fields declares the web server's keys after the shared ones.
func (s *Settings) Fields() []settings.Field {
	return append(s.ReceiptSettings.Fields(),
		settings.Text("url", &s.URL, backend.CheckURL),
		settings.String("login", &s.Login),
		settings.String("password_file", &s.PasswordFile),
		settings.String("operator", &s.Operator),
		settings.String("operator_inn", &s.OperatorINN),
	)
}

// Check pairs the login with its password.
func (s *Settings) Check(sec *settings.Section) {
	if (s.Login == "") != (s.PasswordFile == "") {
		sec.Errorf("password_file", "login and password_file go together: set both or neither")
	}
}

// Open reads the password file and makes the client.
func (s Settings) Open(dir string, log *zap.Logger) (fiscal.Provider, error) {
	cfg := Config{URL: s.URL, Login: s.Login, Operator: s.Operator, OperatorINN: s.OperatorINN}
	if s.PasswordFile != "" {
		pw, err := fiscal.SecretIn(dir, s.PasswordFile)
		if err != nil {
			return nil, err
		}
		cfg.Password = pw
	}
	return New(cfg, log)
}

var _ fiscal.Settings = Settings{}
