package sim

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/kioskd/kioskd/payment/smartpay"
)

// Names of the files in the simulator's directory.
const (
	CAFile         = "ca.crt"
	caKeyFile      = "ca.key"
	ServerCertFile = "server.crt"
	serverKeyFile  = "server.key"
	ServiceKeyFile = "service.key" // RSA-2048: the service decrypts QRs with it
	ServicePubFile = "service.pub" // the app encrypts with it
	AppKeyFile     = "app.key"     // ECDSA P-256: the app signs QRs with it
	AppPubFile     = "app.pub"     // the service verifies with it
)

// KassaFiles returns the CA, certificate and key paths of kassa n (1-based)
// in dir: kassa.crt/kassa.key for 1, kassa2.crt/kassa2.key for 2, and so on.
func KassaFiles(dir string, n int) (ca, cert, key string) {
	base := "kassa"
	if n > 1 {
		base += strconv.Itoa(n)
	}
	return filepath.Join(dir, CAFile), filepath.Join(dir, base+".crt"), filepath.Join(dir, base+".key")
}

// KassaID is the kassa id (certificate CN) of kassa n.
func KassaID(n int) string { return "kassa-" + strconv.Itoa(n) }

// ensureKeys creates whatever key material is missing in dir and returns the
// server's TLS certificate and the CA pool for client certificates.
func ensureKeys(dir string, kassas int) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("sim: %w", err)
	}
	caCert, caKey, err := loadOrCreateCA(dir)
	if err != nil {
		return err
	}
	if !exists(filepath.Join(dir, ServerCertFile)) {
		if err := issue(dir, ServerCertFile, serverKeyFile, caCert, caKey, "smartpay-sim", true); err != nil {
			return err
		}
	}
	for n := 1; n <= kassas; n++ {
		_, cert, key := KassaFiles(dir, n)
		if !exists(cert) {
			if err := issue(dir, filepath.Base(cert), filepath.Base(key), caCert, caKey, KassaID(n), false); err != nil {
				return err
			}
		}
	}
	if !exists(filepath.Join(dir, ServiceKeyFile)) {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			return fmt.Errorf("sim: service key: %w", err)
		}
		if err := writeKeyPair(dir, ServiceKeyFile, ServicePubFile, k, &k.PublicKey); err != nil {
			return err
		}
	}
	if !exists(filepath.Join(dir, AppKeyFile)) {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return fmt.Errorf("sim: app key: %w", err)
		}
		if err := writeKeyPair(dir, AppKeyFile, AppPubFile, k, &k.PublicKey); err != nil {
			return err
		}
	}
	return nil
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

func loadOrCreateCA(dir string) (*x509.Certificate, crypto.Signer, error) {
	certPath, keyPath := filepath.Join(dir, CAFile), filepath.Join(dir, caKeyFile)
	if exists(certPath) {
		pair, err := tls.LoadX509KeyPair(certPath, keyPath)
		if err != nil {
			return nil, nil, fmt.Errorf("sim: CA: %w", err)
		}
		signer, ok := pair.PrivateKey.(crypto.Signer)
		if !ok {
			return nil, nil, errors.New("sim: CA key is not a signer")
		}
		return pair.Leaf, signer, nil
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("sim: CA key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "smartpay-sim CA", Organization: []string{"kioskd simulator"}},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().AddDate(10, 0, 0),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, fmt.Errorf("sim: CA: %w", err)
	}
	if err := writePEM(filepath.Join(dir, caKeyFile), "PRIVATE KEY", mustPKCS8(key), 0o600); err != nil {
		return nil, nil, err
	}
	if err := writePEM(certPath, "CERTIFICATE", der, 0o644); err != nil {
		return nil, nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, fmt.Errorf("sim: CA: %w", err)
	}
	return cert, key, nil
}

// issue writes a certificate signed by the CA: a server certificate for
// 127.0.0.1/::1/localhost, or a client certificate whose CN is the kassa id.
func issue(dir, certName, keyName string, ca *x509.Certificate, caKey crypto.Signer, cn string, server bool) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("sim: %s: %w", certName, err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: cn, Organization: []string{"kioskd simulator"}},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().AddDate(2, 0, 0),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if server {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.DNSNames = []string{"localhost"}
		tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return fmt.Errorf("sim: %s: %w", certName, err)
	}
	if err := writePEM(filepath.Join(dir, keyName), "PRIVATE KEY", mustPKCS8(key), 0o600); err != nil {
		return err
	}
	return writePEM(filepath.Join(dir, certName), "CERTIFICATE", der, 0o644)
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return n
}

func mustPKCS8(k any) []byte {
	b, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		panic(err) // only for key types we generate ourselves
	}
	return b
}

func writeKeyPair(dir, privName, pubName string, priv, pub any) error {
	pubDER, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return fmt.Errorf("sim: %s: %w", pubName, err)
	}
	if err := writePEM(filepath.Join(dir, privName), "PRIVATE KEY", mustPKCS8(priv), 0o600); err != nil {
		return err
	}
	return writePEM(filepath.Join(dir, pubName), "PUBLIC KEY", pubDER, 0o644)
}

// writePEM writes atomically (temp file, fsync, rename) so a crash never
// leaves a half-written key that a later start would trust.
func writePEM(path, typ string, der []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-"+filepath.Base(path))
	if err != nil {
		return fmt.Errorf("sim: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return fmt.Errorf("sim: %w", err)
	}
	if err := pem.Encode(tmp, &pem.Block{Type: typ, Bytes: der}); err != nil {
		tmp.Close()
		return fmt.Errorf("sim: %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("sim: %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("sim: %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("sim: %w", err)
	}
	return nil
}

func readPEM(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("sim: %w", err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, fmt.Errorf("sim: %s: no PEM block", path)
	}
	return blk.Bytes, nil
}

// readKey reads the PEM key file name of dir, parsed by parse (an x509
// key parser), and wants a T.
func readKey[T any](dir, name string, parse func([]byte) (any, error)) (T, error) {
	var zero T
	der, err := readPEM(filepath.Join(dir, name))
	if err != nil {
		return zero, err
	}
	k, err := parse(der)
	if err != nil {
		return zero, fmt.Errorf("sim: %s: %w", name, err)
	}
	t, ok := k.(T)
	if !ok {
		return zero, fmt.Errorf("sim: %s: a %T, want a %T", name, k, zero)
	}
	return t, nil
}

// AppKeys are the keys the mobile app uses to make a QR: the service's public
// RSA key (encryption) and the app's private ECDSA key (signature).
type AppKeys struct {
	ServicePub *rsa.PublicKey
	AppKey     *ecdsa.PrivateKey
}

// LoadAppKeys reads the app's keys from the simulator directory.
func LoadAppKeys(dir string) (*AppKeys, error) {
	pub, err := readKey[*rsa.PublicKey](dir, ServicePubFile, x509.ParsePKIXPublicKey)
	if err != nil {
		return nil, err
	}
	priv, err := readKey[*ecdsa.PrivateKey](dir, AppKeyFile, x509.ParsePKCS8PrivateKey)
	if err != nil {
		return nil, err
	}
	return &AppKeys{ServicePub: pub, AppKey: priv}, nil
}

// QRParams describe one QR. Zero OTP: a random one; zero Time: now.
type QRParams struct {
	UserID string
	OTP    string
	Time   time.Time
}

// QR makes a payload as the mobile app does (SPEC §3): encrypted =
// base64(RSA-OAEP-SHA256("<otp>.<unix ts>.<user_id>")), sign =
// base64(ECDSA-SHA256 ASN.1 over the same string). Tests use OTP and Time to
// make reused and stale codes.
func (k *AppKeys) QR(p QRParams) (string, error) {
	if p.UserID == "" {
		return "", errors.New("sim: QR: empty user id")
	}
	if p.OTP == "" {
		n, err := rand.Int(rand.Reader, big.NewInt(1e12))
		if err != nil {
			return "", fmt.Errorf("sim: QR: %w", err)
		}
		p.OTP = fmt.Sprintf("%012d", n)
	}
	if p.Time.IsZero() {
		p.Time = time.Now()
	}
	plain := fmt.Sprintf("%s.%d.%s", p.OTP, p.Time.Unix(), p.UserID)
	enc, err := rsa.EncryptOAEP(sha256.New(), rand.Reader, k.ServicePub, []byte(plain), nil)
	if err != nil {
		return "", fmt.Errorf("sim: QR: encrypting: %w", err)
	}
	sum := sha256.Sum256([]byte(plain))
	sig, err := ecdsa.SignASN1(rand.Reader, k.AppKey, sum[:])
	if err != nil {
		return "", fmt.Errorf("sim: QR: signing: %w", err)
	}
	b, err := json.Marshal(smartpay.QR{
		IDLoyalty: p.UserID,
		Encrypted: base64.StdEncoding.EncodeToString(enc),
		Sign:      base64.StdEncoding.EncodeToString(sig),
	})
	if err != nil {
		return "", fmt.Errorf("sim: QR: %w", err)
	}
	return string(b), nil
}

// GenerateQR makes a fresh QR payload for userID with the keys in dir.
func GenerateQR(dir, userID string) (string, error) {
	k, err := LoadAppKeys(dir)
	if err != nil {
		return "", err
	}
	return k.QR(QRParams{UserID: userID})
}
