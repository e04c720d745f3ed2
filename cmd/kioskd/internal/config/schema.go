package config

import (
	"fmt"
	"net/url"

	"github.com/kioskd/kioskd/cmd/kioskd/internal/logging"
	"github.com/kioskd/kioskd/display"
	"github.com/kioskd/kioskd/scanner"
	"github.com/kioskd/kioskd/scanner/settings"
)

// The keys of devices.yaml that are the agent's own; the entries of
// scanners and displays declare theirs with their drivers.

// file is the top level of devices.yaml.
type file Config

// Fields declares the sections and top-level keys.
func (c *file) Fields() []settings.Field {
	return []settings.Field{
		settings.Sub("kassa", &c.Kassa).Required("required section is missing"),
		settings.Sub("service", &c.Service).Required("required section is missing"),
		settings.String("journal", &c.Journal),
		settings.Sub("api", &c.API),
		settings.Many("scanners", scanner.Drivers, &c.Scanners),
		settings.Many("displays", display.Drivers, &c.Displays),
		settings.Sub("log", &c.Log),
		settings.Enum("language", (*string)(&c.Language), string(display.Russian), string(display.English)),
		settings.Sub("timeouts", &c.Timeouts),
		settings.Duration("duplicate_window", &c.DuplicateWindow),
		settings.Duration("retention", &c.Retention),
		settings.Sub("metrics", &c.Metrics),
	}
}

// Fields declares the kassa section.
func (k *Kassa) Fields() []settings.Field {
	return []settings.Field{
		settings.Text("id", &k.ID, func(id string) error {
			if !printable(id) || len(id) > 64 {
				return fmt.Errorf("want up to 64 printable characters, got %q", id)
			}
			return nil
		}).Required("required: the kassa id registered with the service"),
		settings.Int("fixed_amount", &k.FixedAmount, 0, 1<<40),
		settings.Enum("handover", &k.Handover, HandoverHost, HandoverAuto),
	}
}

func printable(s string) bool {
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return false
		}
	}
	return true
}

// Fields declares the service section.
func (s *Service) Fields() []settings.Field {
	return []settings.Field{
		settings.Text("url", &s.URL, func(raw string) error {
			u, err := url.Parse(raw)
			switch {
			case err != nil:
				return fmt.Errorf("not a URL: %v", err)
			case u.Scheme != "https":
				return fmt.Errorf("want an https:// URL (the service needs mTLS), got %q", raw)
			case u.Host == "":
				return fmt.Errorf("URL %q has no host", raw)
			}
			return nil
		}).Required("required"),
		settings.String("ca", &s.CA).Required("required"),
		settings.String("cert", &s.Cert).Required("required"),
		settings.String("key", &s.Key).Required("required"),
	}
}

// Fields declares the api section. The API can start and refund payments,
// so it never listens beyond the machine.
func (a *API) Fields() []settings.Field {
	return []settings.Field{
		settings.String("socket", &a.Socket),
		settings.HostPort("listen", &a.Listen, true),
		settings.String("token_file", &a.TokenFile),
	}
}

// Check requires a token for a TCP listener.
func (a *API) Check(sec *settings.Section) {
	if (a.Listen != "" || sec.Failed("listen")) && a.TokenFile == "" {
		sec.Errorf("token_file", "required when api.listen is set (TCP callers need a bearer token)")
	}
}

// Fields declares the log section.
func (l *Log) Fields() []settings.Field {
	return []settings.Field{
		settings.Enum("level", &l.Level, logging.Levels...),
		settings.Enum("format", &l.Format, logging.Formats...),
	}
}

// Fields declares the timeouts section.
func (t *Timeouts) Fields() []settings.Field {
	return []settings.Field{
		settings.Duration("amount", &t.Amount),
		settings.Duration("payment", &t.Payment),
		settings.Duration("handover", &t.Handover),
		settings.Duration("call", &t.Call),
	}
}

// Fields declares the metrics section.
func (m *Metrics) Fields() []settings.Field {
	return []settings.Field{
		settings.Bool("enabled", &m.Enabled),
		settings.HostPort("listen", &m.Listen, false),
	}
}
