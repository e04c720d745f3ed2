package check

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"os/user"
	"strconv"
	"syscall"
	"time"

	"github.com/kioskd/kioskd/cmd/kioskd/internal/config"
)

// certificates checks service.ca, service.cert and service.key. It returns
// false when the Smart Pay client could not even be built from them, so the
// service step is not tried with material known to be broken.
func certificates(r *Report, cfg *config.Config, opts Options) bool {
	now := opts.Now()
	ok := true
	cas, err := readCerts(cfg.Service.CA)
	if err != nil {
		r.fail("service.ca", "%v", err)
		ok = false
	} else {
		for _, c := range cas {
			validity(r, "service.ca", c, now, opts.ExpiryWarning)
		}
	}
	keyOK := keyFile(r, cfg.Service.Key, opts.ServiceUser)
	chain, err := readCerts(cfg.Service.Cert)
	if err != nil {
		r.fail("service.cert", "%v", err)
		return false
	}
	for i, c := range chain {
		subject := "service.cert"
		if i > 0 {
			subject = fmt.Sprintf("service.cert (intermediate %d)", i)
		}
		validity(r, subject, c, now, opts.ExpiryWarning)
	}
	leaf := chain[0]
	if len(cas) > 0 {
		verifyChain(r, leaf, chain[1:], cas, now)
	}
	// Both run, so a key with a bad mode and the wrong pair shows both.
	if matchOK := keyMatches(r, cfg.Service.Cert, cfg.Service.Key); !keyOK || !matchOK {
		ok = false
	}
	return ok
}

// readCerts parses every CERTIFICATE block of a PEM file.
func readCerts(path string) ([]*x509.Certificate, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read %s: %w", path, errors.Unwrap(err))
	}
	var out []*x509.Certificate
	for rest := data; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%s: certificate %d does not parse: %w", path, len(out)+1, err)
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no PEM certificate in it", path)
	}
	return out, nil
}

func day(t time.Time) string { return t.UTC().Format("2006-01-02") }

func days(d time.Duration) int { return int(d.Hours() / 24) }

// validity reports an expired, not yet valid or soon expiring certificate.
func validity(r *Report, subject string, c *x509.Certificate, now time.Time, warn time.Duration) {
	name := c.Subject.CommonName
	switch {
	case now.After(c.NotAfter):
		r.fail(subject, "expired on %s (%d days ago; CN %q): get a new certificate", day(c.NotAfter), days(now.Sub(c.NotAfter)), name)
	case now.Before(c.NotBefore):
		r.fail(subject, "not valid before %s (in %d days; CN %q): is the clock right?", day(c.NotBefore), days(c.NotBefore.Sub(now)), name)
	case c.NotAfter.Sub(now) < warn:
		r.warn(subject, "expires on %s (in %d days; CN %q): renew it", day(c.NotAfter), days(c.NotAfter.Sub(now)), name)
	default:
		r.pass(subject, "CN %q valid until %s (%d days)", name, day(c.NotAfter), days(c.NotAfter.Sub(now)))
	}
}

// verifyChain checks that the client certificate chains to service.ca and
// may be used for client authentication. Validity dates are reported by
// validity; a chain that only fails on dates is checked again at a moment
// when the leaf was valid, so a wrong CA is still found.
func verifyChain(r *Report, leaf *x509.Certificate, intermediates, cas []*x509.Certificate, now time.Time) {
	roots := x509.NewCertPool()
	for _, c := range cas {
		roots.AddCert(c)
	}
	inter := x509.NewCertPool()
	for _, c := range intermediates {
		inter.AddCert(c)
	}
	opts := x509.VerifyOptions{Roots: roots, Intermediates: inter, CurrentTime: now,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	_, err := leaf.Verify(opts)
	var inv x509.CertificateInvalidError
	if errors.As(err, &inv) && inv.Reason == x509.Expired {
		opts.CurrentTime = leaf.NotBefore.Add(time.Minute)
		_, err = leaf.Verify(opts)
		if errors.As(err, &inv) && inv.Reason == x509.Expired {
			err = nil // only dates, which validity already reported
		}
	}
	var unknown x509.UnknownAuthorityError
	switch {
	case err == nil:
		r.pass("service.cert", "chains to service.ca")
	case errors.As(err, &unknown):
		r.fail("service.cert", "not signed by service.ca (issuer %q): use the certificate issued for this service, or the right CA", leaf.Issuer.CommonName)
	case errors.As(err, &inv) && inv.Reason == x509.IncompatibleUsage:
		r.fail("service.cert", "not a client certificate (its extended key usage does not allow client authentication)")
	default:
		r.fail("service.cert", "does not verify against service.ca: %v", err)
	}
}

// keyFile checks that only the service user can read the private key: the
// Smart Pay client refuses a key that group or others may read.
func keyFile(r *Report, path, serviceUser string) bool {
	fi, err := os.Stat(path)
	if err != nil {
		r.fail("service.key", "cannot read %s: %v", path, errors.Unwrap(err))
		return false
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		r.fail("service.key", "mode %04o lets group or others read the private key; run chmod 600 %s", perm, path)
		return false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return true
	}
	u, err := user.Lookup(serviceUser)
	if err != nil {
		return true // no service user on this machine (a laptop): nothing to compare with
	}
	// The mode allows only the owner, so the owner must be the service user.
	if uid, err := strconv.ParseUint(u.Uid, 10, 32); err == nil && uint32(uid) != st.Uid {
		r.fail("service.key", "owned by uid %d, so user %s cannot read it; run chown %s %s", st.Uid, serviceUser, serviceUser, path)
		return false
	}
	return true
}

// keyMatches loads the pair the way the client will and reports a key that
// belongs to another certificate.
func keyMatches(r *Report, certPath, keyPath string) bool {
	certPEM, err := os.ReadFile(certPath)
	if err != nil {
		return false // reported by readCerts
	}
	keyPEM, err := os.ReadFile(keyPath)
	if err != nil {
		return false // reported by keyFile
	}
	if _, err := tls.X509KeyPair(certPEM, keyPEM); err != nil {
		if b, _ := pem.Decode(keyPEM); b == nil {
			r.fail("service.key", "%s: no PEM private key in it", keyPath)
		} else {
			r.fail("service.key", "does not belong to service.cert: %v", err)
		}
		return false
	}
	r.pass("service.key", "matches service.cert")
	return true
}
