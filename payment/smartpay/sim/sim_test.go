package sim

import (
	"bytes"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/kioskd/kioskd/payment/smartpay"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestKeyMaterialCreatedOnceAndReused(t *testing.T) {
	dir := t.TempDir()
	if _, err := New(Config{Dir: dir, Kassas: 3}, nil); err != nil {
		t.Fatal(err)
	}
	ca1, _ := os.ReadFile(filepath.Join(dir, CAFile))
	svc1, _ := os.ReadFile(filepath.Join(dir, ServicePubFile))
	for n := 1; n <= 3; n++ {
		_, cert, key := KassaFiles(dir, n)
		fi, err := os.Stat(key)
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("kassa %d key: %v %v", n, fi.Mode(), err)
		}
		pair, err := tls.LoadX509KeyPair(cert, key)
		if err != nil || pair.Leaf.Subject.CommonName != KassaID(n) {
			t.Fatalf("kassa %d cert: %v", n, err)
		}
	}
	if _, err := New(Config{Dir: dir, Kassas: 1}, nil); err != nil {
		t.Fatal(err)
	}
	ca2, _ := os.ReadFile(filepath.Join(dir, CAFile))
	svc2, _ := os.ReadFile(filepath.Join(dir, ServicePubFile))
	if !bytes.Equal(ca1, ca2) || !bytes.Equal(svc1, svc2) || len(ca1) == 0 {
		t.Fatal("second start replaced the key material")
	}
	if _, cert, _ := KassaFiles(dir, 1); filepath.Base(cert) != "kassa.crt" {
		t.Fatalf("kassa 1 cert %s", cert)
	}
}

func TestGenerateQR(t *testing.T) {
	dir := t.TempDir()
	s, err := New(Config{Dir: dir}, nil)
	if err != nil {
		t.Fatal(err)
	}
	payload, err := GenerateQR(dir, "user-42")
	if err != nil {
		t.Fatal(err)
	}
	q, err := smartpay.ParseQR([]byte(payload))
	if err != nil {
		t.Fatal(err)
	}
	ct, _ := base64.StdEncoding.DecodeString(q.Encrypted)
	plain, err := rsa.DecryptOAEP(sha256.New(), nil, s.serviceKey, ct, nil)
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(string(plain), ".")
	if len(parts) != 3 || parts[2] != "user-42" || q.IDLoyalty != "user-42" {
		t.Fatalf("plaintext %q", plain)
	}
	otp, ts, user, aerr := s.openQR(q)
	if aerr != nil || otp != parts[0] || user != "user-42" || time.Since(ts) > time.Minute {
		t.Fatalf("openQR: %v %v %v %v", otp, ts, user, aerr)
	}
}

func TestAdminHandler(t *testing.T) {
	s, err := New(Config{Dir: t.TempDir()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s.AdminHandler())
	defer srv.Close()
	post := func(path, body string) (int, string) {
		resp, err := http.Post(srv.URL+path, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := post("/sim/faults", `{"method":"commit","count":2,"kind":"delay","delay":"2s"}`); code != 200 {
		t.Fatalf("fault: %d %s", code, body)
	}
	if f := s.faults[MethodCommit]; f == nil || f.Count != 2 || f.Delay != 2*time.Second {
		t.Fatalf("armed fault %+v", f)
	}
	for _, bad := range []string{
		`{"method":"nope","kind":"drop"}`,
		`{"method":"commit","kind":"explode"}`,
		`{"method":"commit","kind":"delay"}`,
		`{"method":"commit","kind":"delay","delay":"soon"}`,
		`{"method":"commit","kind":"status","status":200}`,
		`{"method":"commit","kind":"drop","extra":1}`,
	} {
		if code, _ := post("/sim/faults", bad); code != http.StatusBadRequest {
			t.Errorf("%s: %d", bad, code)
		}
	}
	// A fault that fires is counted; DELETE disarms what is left.
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodPost, smartpay.PathCommit, strings.NewReader("{}")))
	if code, body := post("/sim/faults", `{"method":"release","kind":"status","status":503}`); code != 200 {
		t.Fatalf("fault: %d %s", code, body)
	}
	rec = httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodPost, smartpay.PathRelease, strings.NewReader("{}")))
	if rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("release under a 503 fault: %d", rec.Code)
	}
	req, _ := http.NewRequest(http.MethodDelete, srv.URL+"/sim/faults", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if want := `{}`; resp.StatusCode != http.StatusOK || string(b) != want {
		t.Fatalf("DELETE /sim/faults: %s, want %s", b, want)
	}
	if len(s.faults) != 0 {
		t.Fatalf("faults left armed: %v", s.faults)
	}
	if st := s.State(); len(st.FaultsFired) != 2 || st.FaultsFired["commit/delay"] != 1 || st.FaultsFired["release/status"] != 1 {
		t.Fatalf("faults fired: %v", st.FaultsFired)
	}
	code, payload := post("/sim/qr?user=u9", "")
	if q, err := smartpay.ParseQR([]byte(payload)); code != 200 || err != nil || q.IDLoyalty != "u9" {
		t.Fatalf("qr: %d %v", code, err)
	}
	resp, err = http.Get(srv.URL + "/sim/state")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st State
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil || st.Purchases == nil || st.Requests == nil {
		t.Fatalf("state: %+v %v", st, err)
	}
}

// BenchmarkOpenQR is the service-side cost of a commit's QR check
// (RSA-2048 OAEP decryption and ECDSA P-256 verification): it is in every
// commit figure, warm or not.
func BenchmarkOpenQR(b *testing.B) {
	s, err := New(Config{Dir: b.TempDir()}, nil)
	if err != nil {
		b.Fatal(err)
	}
	p, err := s.QR("bench")
	if err != nil {
		b.Fatal(err)
	}
	q, err := smartpay.ParseQR([]byte(p))
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, _, _, e := s.openQR(q); e != nil {
			b.Fatal(e)
		}
	}
}
