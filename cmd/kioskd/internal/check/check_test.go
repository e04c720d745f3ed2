package check

import (
	"context"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/kioskd/kioskd/cmd/kioskd/internal/config"
	"github.com/kioskd/kioskd/payment/smartpay/sim"
	"github.com/kioskd/kioskd/payment/smartpay/sim/simtest"
	"github.com/kioskd/kioskd/scanner/serial"
	"github.com/kioskd/kioskd/scanner/serial/serialtest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var now = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

const day24 = 24 * time.Hour

// configFor writes a devices.yaml for the given service material and parses
// it through the real loader.
func configFor(t *testing.T, url, ca, cert, key, extra string) *config.Config {
	t.Helper()
	src := fmt.Sprintf(`kassa:
  id: kassa-1
service:
  url: %s
  ca: %s
  cert: %s
  key: %s
journal: %s
scanners:
  - name: front
    driver: serial
    port: /dev/null
%s`, url, ca, cert, key, filepath.Join(t.TempDir(), "journal.db"), extra)
	path := filepath.Join(t.TempDir(), "devices.yaml")
	if err := os.WriteFile(path, []byte(src), 0o640); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatalf("config:\n%v", err)
	}
	return cfg
}

// only returns the problems about subject (a prefix), as strings.
func only(r *Report, subject string) []string {
	var out []string
	for _, p := range r.Problems {
		if strings.HasPrefix(p.Subject, subject) {
			out = append(out, p.Severity.String()+" "+p.String())
		}
	}
	return out
}

func certOnly() Options {
	return Options{Now: func() time.Time { return now }, SkipService: true, SkipDevices: true, ServiceUser: "no-such-user-kioskd-test"}
}

func TestGoodCertificates(t *testing.T) {
	p := newPKI(t, "Test CA", now.Add(-day24), now.Add(3650*day24))
	cert, key := p.client("client", now.Add(-day24), now.Add(365*day24), x509.ExtKeyUsageClientAuth)
	r := Run(context.Background(), configFor(t, "https://127.0.0.1:1", p.caFile(), cert, key, ""), certOnly())
	if got := only(r, "service"); len(got) != 0 {
		t.Errorf("problems: %q", got)
	}
	want := []string{`service.cert: CN "kassa-test" valid until 2027-11-26 (365 days)`, "service.cert: chains to service.ca",
		"service.key: matches service.cert"}
	for _, w := range want {
		if !contains(r.Passed, w) {
			t.Errorf("passed %q does not contain %q", r.Passed, w)
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func TestCertificateProblems(t *testing.T) {
	p := newPKI(t, "Test CA", now.Add(-1000*day24), now.Add(3650*day24))
	other := newPKI(t, "Other CA", now.Add(-day24), now.Add(3650*day24))
	type files struct{ ca, cert, key string }
	cases := []struct {
		name   string
		files  func() files
		want   []string
		failed bool
	}{
		{"expired", func() files {
			c, k := p.client("expired", now.Add(-400*day24), now.Add(-35*day24), x509.ExtKeyUsageClientAuth)
			return files{p.caFile(), c, k}
		}, []string{`failure service.cert: expired on 2026-10-22 (35 days ago; CN "kassa-test"): get a new certificate`}, true},
		{"not yet valid", func() files {
			c, k := p.client("future", now.Add(10*day24), now.Add(400*day24), x509.ExtKeyUsageClientAuth)
			return files{p.caFile(), c, k}
		}, []string{`failure service.cert: not valid before 2026-12-06 (in 10 days; CN "kassa-test"): is the clock right?`}, true},
		{"expires soon", func() files {
			c, k := p.client("soon", now.Add(-300*day24), now.Add(12*day24+time.Hour), x509.ExtKeyUsageClientAuth)
			return files{p.caFile(), c, k}
		}, []string{`warning service.cert: expires on 2026-12-08 (in 12 days; CN "kassa-test"): renew it`}, false},
		{"key of another certificate", func() files {
			c, _ := p.client("a", now.Add(-day24), now.Add(365*day24), x509.ExtKeyUsageClientAuth)
			_, k := p.client("b", now.Add(-day24), now.Add(365*day24), x509.ExtKeyUsageClientAuth)
			return files{p.caFile(), c, k}
		}, []string{`failure service.key: does not belong to service.cert: tls: private key does not match public key`}, true},
		{"key readable by others", func() files {
			c, k := p.client("open", now.Add(-day24), now.Add(365*day24), x509.ExtKeyUsageClientAuth)
			if err := os.Chmod(k, 0o644); err != nil {
				t.Fatal(err)
			}
			return files{p.caFile(), c, k}
		}, []string{`failure service.key: mode 0644 lets group or others read the private key; run chmod 600 ` + filepath.Join(p.dir, "open.key")}, true},
		{"signed by another CA", func() files {
			c, k := other.client("stranger", now.Add(-day24), now.Add(365*day24), x509.ExtKeyUsageClientAuth)
			return files{p.caFile(), c, k}
		}, []string{`failure service.cert: not signed by service.ca (issuer "Other CA"): use the certificate issued for this service, or the right CA`}, true},
		{"server certificate instead of a client one", func() files {
			c, k := p.client("server", now.Add(-day24), now.Add(365*day24), x509.ExtKeyUsageServerAuth)
			return files{p.caFile(), c, k}
		}, []string{`failure service.cert: not a client certificate (its extended key usage does not allow client authentication)`}, true},
		{"missing files", func() files {
			return files{filepath.Join(p.dir, "nope-ca.pem"), filepath.Join(p.dir, "nope.pem"), filepath.Join(p.dir, "nope.key")}
		}, []string{
			`failure service.ca: cannot read ` + filepath.Join(p.dir, "nope-ca.pem") + `: no such file or directory`,
			`failure service.key: cannot read ` + filepath.Join(p.dir, "nope.key") + `: no such file or directory`,
			`failure service.cert: cannot read ` + filepath.Join(p.dir, "nope.pem") + `: no such file or directory`}, true},
		{"not PEM", func() files {
			junk := filepath.Join(p.dir, "junk.pem")
			if err := os.WriteFile(junk, []byte("hello\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			c, k := p.client("fine", now.Add(-day24), now.Add(365*day24), x509.ExtKeyUsageClientAuth)
			return files{junk, c, k}
		}, []string{`failure service.ca: ` + filepath.Join(p.dir, "junk.pem") + `: no PEM certificate in it`}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := tc.files()
			r := Run(context.Background(), configFor(t, "https://127.0.0.1:1", f.ca, f.cert, f.key, ""), certOnly())
			got := only(r, "service")
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
			sub := &Report{}
			for _, p := range r.Problems {
				if strings.HasPrefix(p.Subject, "service") {
					sub.Problems = append(sub.Problems, p)
				}
			}
			if sub.Failed() != tc.failed {
				t.Errorf("Failed() = %v, want %v", sub.Failed(), tc.failed)
			}
		})
	}
}

func TestKeyOwnedByAnotherUser(t *testing.T) {
	me, err := user.Current()
	if err != nil {
		t.Skip(err)
	}
	if me.Uid == "0" {
		// As root we can give the key away and check the message.
		p := newPKI(t, "Test CA", now.Add(-day24), now.Add(3650*day24))
		cert, key := p.client("client", now.Add(-day24), now.Add(365*day24), x509.ExtKeyUsageClientAuth)
		if err := os.Chown(key, 4242, 4242); err != nil {
			t.Skip(err)
		}
		opts := certOnly()
		opts.ServiceUser = me.Username
		r := Run(context.Background(), configFor(t, "https://127.0.0.1:1", p.caFile(), cert, key, ""), opts)
		want := fmt.Sprintf("failure service.key: owned by uid 4242, so user %s cannot read it; run chown %s %s", me.Username, me.Username, key)
		if got := only(r, "service.key"); len(got) != 1 || got[0] != want {
			t.Errorf("problems %q, want %q", got, want)
		}
		return
	}
	t.Skip("needs root to chown the key")
}

// startSim runs the real simulator with mTLS on a loopback port.
func startSim(t *testing.T) (url, ca, cert, key string) {
	t.Helper()
	srv := simtest.NewServer(t, sim.Config{})
	ca, cert, key = srv.KassaFiles(1)
	return srv.URL, ca, cert, key
}

// TestHealthyKiosk runs every step against the real simulator over mTLS,
// a real pty as the scanner and another as the pole display.
func TestHealthyKiosk(t *testing.T) {
	url, ca, cert, key := startSim(t)
	scanTTY, poleTTY := serialtest.New(t, "").Slave, serialtest.New(t, "").Slave
	web := simtest.FreeAddr(t)
	cfg := configFor(t, url, ca, cert, key, fmt.Sprintf(`displays:
  - name: pole
    driver: vfd
    port: %s
  - name: screen
    driver: web
    listen: "%s"
`, poleTTY.Name(), web))
	front := cfg.Scanners[0].Settings.(serial.Settings)
	front.Port.Path = scanTTY.Name()
	cfg.Scanners[0].Settings = front
	me, _ := user.Current()
	r := Run(context.Background(), cfg, Options{ServiceUser: me.Username})
	logReport(t, r)
	for _, p := range r.Problems {
		t.Errorf("unexpected problem: %s %s", p.Severity, p)
	}
	var sawPing, sawScanner, sawPole, sawWeb bool
	for _, l := range r.Passed {
		sawPing = sawPing || strings.HasPrefix(l, "service.url: "+url+" answered ping in ")
		sawScanner = sawScanner || l == "scanners[0] (front): opened and closed with driver serial"
		sawPole = sawPole || l == "displays[0] (pole): "+poleTTY.Name()+" opens"
		sawWeb = sawWeb || l == "displays[1] (screen): can listen on "+web
	}
	if !sawPing || !sawScanner || !sawPole || !sawWeb {
		t.Errorf("passed lines missing (ping %v scanner %v pole %v web %v):\n%s", sawPing, sawScanner, sawPole, sawWeb,
			strings.Join(r.Passed, "\n"))
	}
}

func logReport(t *testing.T, r *Report) {
	t.Helper()
	for _, l := range r.Passed {
		t.Log("ok      ", l)
	}
	for _, p := range r.Problems {
		t.Logf("%-8s %s", p.Severity, p)
	}
}

func TestUnreachableService(t *testing.T) {
	p := newPKI(t, "Test CA", time.Now().Add(-day24), time.Now().Add(3650*day24))
	cert, key := p.client("client", time.Now().Add(-day24), time.Now().Add(365*day24), x509.ExtKeyUsageClientAuth)
	addr := simtest.FreeAddr(t) // closed again: nothing listens there
	opts := Options{SkipDevices: true, ServiceUser: "no-such-user-kioskd-test", Timeout: 5 * time.Second}
	r := Run(context.Background(), configFor(t, "https://"+addr, p.caFile(), cert, key, ""), opts)
	got := only(r, "service.url")
	if len(got) != 1 || !strings.HasPrefix(got[0], "failure service.url: https://"+addr+": ping failed: ") ||
		!strings.Contains(got[0], "connection refused") {
		t.Errorf("problems: %q", got)
	}
}

func TestServiceWithAnotherCA(t *testing.T) {
	url, _, cert, key := startSim(t)
	// Our CA does not sign the simulator's server certificate.
	other := newPKI(t, "Other CA", time.Now().Add(-day24), time.Now().Add(3650*day24))
	opts := Options{SkipDevices: true, ServiceUser: "no-such-user-kioskd-test"}
	r := Run(context.Background(), configFor(t, url, other.caFile(), cert, key, ""), opts)
	logReport(t, r)
	got := only(r, "service.url")
	if len(got) != 1 || !strings.Contains(got[0], "ping failed") || !strings.Contains(got[0], "certificate") {
		t.Errorf("problems: %q", got)
	}
}

func TestServiceNotTriedWithBrokenKey(t *testing.T) {
	p := newPKI(t, "Test CA", now.Add(-day24), now.Add(3650*day24))
	cert, _ := p.client("a", now.Add(-day24), now.Add(365*day24), x509.ExtKeyUsageClientAuth)
	_, key := p.client("b", now.Add(-day24), now.Add(365*day24), x509.ExtKeyUsageClientAuth)
	opts := certOnly()
	opts.SkipService = false
	r := Run(context.Background(), configFor(t, "https://127.0.0.1:1", p.caFile(), cert, key, ""), opts)
	want := []string{"failure service.url: not tried: fix the certificate problems above first"}
	if got := only(r, "service.url"); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("problems %q", got)
	}
}

func TestDeviceProblems(t *testing.T) {
	p := newPKI(t, "Test CA", now.Add(-day24), now.Add(3650*day24))
	cert, key := p.client("client", now.Add(-day24), now.Add(365*day24), x509.ExtKeyUsageClientAuth)
	plain := filepath.Join(t.TempDir(), "plain")
	if err := os.WriteFile(plain, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	cfg := configFor(t, "https://127.0.0.1:1", p.caFile(), cert, key, fmt.Sprintf(`  - name: gone
    driver: serial
    port: /dev/kiosk-test-missing
  - name: plain
    driver: serial
    port: %s
  - name: hidpos
    driver: hid
    vid: "0c2e"
    pid: "10d3"
displays:
  - name: screen
    driver: web
    listen: "%s"
`, plain, busy.Addr()))
	opts := Options{Now: func() time.Time { return now }, SkipService: true, ServiceUser: "no-such-user-kioskd-test"}
	r := Run(context.Background(), cfg, opts)
	logReport(t, r)
	var got []string
	for _, p := range r.Problems {
		if strings.HasPrefix(p.Subject, "scanners") || strings.HasPrefix(p.Subject, "displays") {
			got = append(got, p.Severity.String()+" "+p.String())
		}
	}
	// One failure names each broken device, in the driver's words, which
	// name the device once.
	type want struct{ prefix, contains string }
	wants := []want{
		{"failure scanners[0] (front): scanner/serial: open /dev/null: ", ""},
		{"failure scanners[1] (gone): scanner/serial: open /dev/kiosk-test-missing: no such file or directory: check the cable", ""},
		{"failure scanners[2] (plain): scanner/serial: open " + plain + ": ", ""},
		{"failure scanners[3] (hidpos): scanner/hid: open 0c2e:10d3: ", "kioskd devices"},
		{"warning displays[0] (screen): " + busy.Addr().String() + " is in use (a running kioskd holds it, or another program)", ""},
	}
	if len(got) != len(wants) {
		t.Fatalf("problems:\n%s\nwant %d", strings.Join(got, "\n"), len(wants))
	}
	for i, w := range wants {
		if !strings.HasPrefix(got[i], w.prefix) || !strings.Contains(got[i], w.contains) {
			t.Errorf("problem %d:\n%s\nwant it to start with %q and contain %q", i, got[i], w.prefix, w.contains)
		}
	}
}

func TestAPITokenFile(t *testing.T) {
	p := newPKI(t, "Test CA", now.Add(-day24), now.Add(3650*day24))
	cert, key := p.client("client", now.Add(-day24), now.Add(365*day24), x509.ExtKeyUsageClientAuth)
	token := filepath.Join(t.TempDir(), "api.token")
	extra := "api:\n  listen: 127.0.0.1:8731\n  token_file: " + token + "\n"
	cfg := configFor(t, "https://127.0.0.1:1", p.caFile(), cert, key, extra)
	for _, tc := range []struct {
		write func()
		want  string
	}{
		{func() {}, "failure api.token_file: cannot read " + token + ": no such file or directory"},
		{func() { os.WriteFile(token, []byte("secret\n"), 0o644) }, "failure api.token_file: mode 0644 lets everyone read the API token; run chmod 640 " + token},
		{func() { os.WriteFile(token, nil, 0o640); os.Chmod(token, 0o640) }, "failure api.token_file: " + token + " is empty"},
		{func() { os.WriteFile(token, []byte("secret\n"), 0o640) }, ""},
	} {
		tc.write()
		got := strings.Join(only(Run(context.Background(), cfg, certOnly()), "api."), "\n")
		if got != tc.want {
			t.Errorf("got %q, want %q", got, tc.want)
		}
	}
}

// TestConfigProblems checks that RunFile turns every config problem into a
// failure line that names the file, the line and the field.
func TestConfigProblems(t *testing.T) {
	dir := t.TempDir()
	write := func(name, src string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(src), 0o640); err != nil {
			t.Fatal(err)
		}
		return path
	}
	base := "kassa:\n  id: k\nservice:\n  url: https://x\n  ca: ca.pem\n  cert: c.pem\n  key: c.key\nscanners:\n"
	cases := []struct {
		name string
		path string
		want []string
	}{
		{"missing file", filepath.Join(dir, "absent.yaml"), []string{
			filepath.Join(dir, "absent.yaml") + ": no such file (copy the example devices.yaml there): open " +
				filepath.Join(dir, "absent.yaml") + ": no such file or directory"}},
		{"bad YAML", write("bad.yaml", base+"  - name: [front\n"), []string{
			filepath.Join(dir, "bad.yaml") + ":9: YAML syntax: sequence end token ']' not found"}},
		{"unknown key", write("unknown.yaml", base+"  - name: a\n    driver: serial\n    port: /dev/ttyS0\n    speed: 9600\n"), []string{
			filepath.Join(dir, "unknown.yaml") + ":12: scanners[0].speed: unknown key"}},
		{"wrong type", write("type.yaml", base+"  - name: a\n    driver: serial\n    port: /dev/ttyS0\n    baud: fast\n"), []string{
			filepath.Join(dir, "type.yaml") + `:12: scanners[0].baud: want a number, got "fast"`}},
		{"bad hex vid", write("vid.yaml", base+"  - name: a\n    driver: usb\n    vid: \"0g2e\"\n    pid: \"10d3\"\n"), []string{
			filepath.Join(dir, "vid.yaml") + `:11: scanners[0].vid: want 4 hex digits like "0c2e", got "0g2e"`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg, r := RunFile(context.Background(), tc.path, certOnly())
			if cfg != nil || !r.Failed() {
				t.Fatalf("cfg %v failed %v", cfg != nil, r.Failed())
			}
			var got []string
			for _, p := range r.Problems {
				got = append(got, p.String())
			}
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}

func TestPrint(t *testing.T) {
	r := &Report{Passed: []string{"service.key: matches service.cert"}, Problems: []Problem{
		{Severity: Warning, Subject: "service.cert", Msg: "expires on 2026-12-08 (in 12 days)"},
		{Severity: Failure, Msg: "d.yaml:3: kassa.id: must not be empty"},
	}}
	var b strings.Builder
	if err := r.Print(&b, true); err != nil {
		t.Fatal(err)
	}
	want := "ok   service.key: matches service.cert\nWARN service.cert: expires on 2026-12-08 (in 12 days)\nFAIL d.yaml:3: kassa.id: must not be empty\n"
	if b.String() != want {
		t.Errorf("got:\n%s\nwant:\n%s", b.String(), want)
	}
}
