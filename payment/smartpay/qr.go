package smartpay

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Size bounds of a QR payload. MaxQRSize is what a version 40 QR code can carry
// in byte mode; the field bounds leave room for RSA-4096 ciphertexts and any
// ECDSA/RSA signature while refusing garbage that happens to be JSON.
const (
	MaxQRSize         = 2953
	MaxIDLoyaltyLen   = 256
	MaxEncryptedLen   = 1400 // base64 characters
	MaxSignLen        = 1400 // base64 characters
	minCiphertextSize = 16   // decoded bytes; anything shorter is not a ciphertext
	minSignatureSize  = 8
)

// QRErrorKind says why a scanned payload is not a payment QR.
type QRErrorKind int

// Reasons a payload is refused. Keep in sync with qrKindNames.
const (
	QRNotJSON        QRErrorKind = iota // not valid JSON, or something after the object
	QRNotObject                         // JSON, but not an object
	QRMissingField                      // a required field is absent
	QRExtraField                        // a field that is not part of the QR
	QREmptyField                        // a required field is empty
	QRWrongType                         // a field is not a string
	QRDuplicateField                    // a field appears twice
	QRBadBase64                         // encrypted or sign is not standard base64
	QRBadText                           // invalid UTF-8, or control characters in id_loyalty
	QRTooLarge                          // payload or a field is longer than allowed
	QRProductBarcode                    // digits only: a product barcode (EAN/UPC…), not a payment QR
	QRWrapped                           // a QR object with unrecognised bytes before it (a scanner prefix?)
	QRLink                              // a link that carries no payment QR (another payment system's?)
	QRAmbiguous                         // a link that carries more than one payment QR
)

var qrKindNames = [...]string{"not_json", "not_object", "missing_field", "extra_field",
	"empty_field", "wrong_type", "duplicate_field", "bad_base64", "bad_text", "too_large",
	"product_barcode", "wrapped", "link", "ambiguous"}

func (k QRErrorKind) String() string {
	if k >= 0 && int(k) < len(qrKindNames) {
		return qrKindNames[k]
	}
	return fmt.Sprintf("QRErrorKind(%d)", int(k))
}

// ErrInvalidQR matches every *QRError with errors.Is.
var ErrInvalidQR = errors.New("smartpay: not a payment QR")

// QRError explains why a payload was refused. It never contains the payload's
// content (it may hold an encrypted OTP), only field names and sizes.
type QRError struct {
	Kind   QRErrorKind
	Field  string // the field concerned, when there is one
	Detail string // e.g. "EAN-13" for a product barcode, a size
}

func (e *QRError) Error() string {
	s := "smartpay: qr: " + e.Kind.String()
	if e.Field != "" {
		s += " " + e.Field
	}
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	return s
}

// Is makes every QRError match ErrInvalidQR.
func (e *QRError) Is(target error) bool { return target == ErrInvalidQR }

// ParseQR validates a scanned payload as a payment QR (SPEC §3): a JSON object
// with exactly the string fields id_loyalty, encrypted and sign, non-empty,
// the last two standard base64, within size bounds. It returns a *QRError for
// anything else. The kassa cannot check the crypto; the fields are forwarded
// verbatim.
//
// Besides the bare object it accepts what QR generators put around it when
// the object can still be told unambiguously (what a scanner adds is
// scanner/frame's business):
//   - surrounding whitespace, and the object pretty-printed over lines;
//   - a leading UTF-8 byte order mark (qrcodejs and EasyQRCodeJS before 4.4.1
//     add one to non-ASCII text, Aspose's Utf8BOM mode always);
//   - JSON escapes such as PHP's "\/" (the fields are the decoded strings);
//   - a link ("scheme://…", as deep links wrap a payload for phone cameras)
//     with the object percent-encoded in exactly one query or fragment
//     parameter; a link with two different objects is QRAmbiguous, one with
//     none QRLink.
//
// Text before the object that is none of these (a scanner's custom prefix) is
// refused as QRWrapped, data after it as QRNotJSON.
func ParseQR(data []byte) (QR, error) {
	if len(data) > MaxQRSize {
		return QR{}, &QRError{Kind: QRTooLarge, Detail: fmt.Sprintf("%d bytes", len(data))}
	}
	data = bytes.TrimSpace(bytes.TrimPrefix(bytes.TrimSpace(data), utf8BOM))
	if len(data) > 0 && isDigits(data) {
		return QR{}, &QRError{Kind: QRProductBarcode, Detail: barcodeKind(data)}
	}
	if len(data) > 0 && data[0] != '{' {
		if u, ok := asLink(data); ok {
			return parseLink(u)
		}
	}
	q, err := parseObject(data)
	if err != nil && len(data) > 0 && data[0] != '{' {
		if i := bytes.IndexByte(data, '{'); i > 0 {
			if _, inner := parseObject(data[i:]); inner == nil {
				return QR{}, &QRError{Kind: QRWrapped, Detail: fmt.Sprintf("%d bytes before the object", i)}
			}
		}
	}
	return q, err
}

// utf8BOM is the byte order mark some generators put before UTF-8 text.
var utf8BOM = []byte("\uFEFF")

// parseObject validates data as exactly one payment QR object.
func parseObject(data []byte) (QR, error) {
	if !utf8.Valid(data) {
		// encoding/json would replace the bad bytes, and the fields would no
		// longer be forwarded verbatim.
		return QR{}, &QRError{Kind: QRBadText, Detail: "invalid UTF-8"}
	}
	if !json.Valid(data) {
		return QR{}, &QRError{Kind: QRNotJSON}
	}
	if data[0] != '{' {
		return QR{}, &QRError{Kind: QRNotObject}
	}
	// Walk the tokens instead of Unmarshal so that duplicates, extra fields and
	// non-string values are refused rather than silently merged or dropped.
	dec := json.NewDecoder(bytes.NewReader(data))
	if _, err := dec.Token(); err != nil { // '{'
		return QR{}, &QRError{Kind: QRNotJSON}
	}
	var q QR
	seen := map[string]bool{}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return QR{}, &QRError{Kind: QRNotJSON}
		}
		key, _ := t.(string)
		var dst *string
		switch key {
		case "id_loyalty":
			dst = &q.IDLoyalty
		case "encrypted":
			dst = &q.Encrypted
		case "sign":
			dst = &q.Sign
		default:
			return QR{}, &QRError{Kind: QRExtraField, Field: safeFieldName(key)}
		}
		if seen[key] {
			return QR{}, &QRError{Kind: QRDuplicateField, Field: key}
		}
		seen[key] = true
		v, err := dec.Token()
		if err != nil {
			return QR{}, &QRError{Kind: QRNotJSON}
		}
		s, ok := v.(string)
		if !ok {
			return QR{}, &QRError{Kind: QRWrongType, Field: key}
		}
		*dst = s
	}
	if _, err := dec.Token(); err != nil { // '}'
		return QR{}, &QRError{Kind: QRNotJSON}
	}
	if _, err := dec.Token(); err != io.EOF {
		return QR{}, &QRError{Kind: QRNotJSON, Detail: "data after the object"}
	}
	for _, f := range []struct {
		name string
		val  string
		max  int
		b64  bool
		min  int
	}{
		{"id_loyalty", q.IDLoyalty, MaxIDLoyaltyLen, false, 0},
		{"encrypted", q.Encrypted, MaxEncryptedLen, true, minCiphertextSize},
		{"sign", q.Sign, MaxSignLen, true, minSignatureSize},
	} {
		if !seen[f.name] {
			return QR{}, &QRError{Kind: QRMissingField, Field: f.name}
		}
		if f.val == "" {
			return QR{}, &QRError{Kind: QREmptyField, Field: f.name}
		}
		if len(f.val) > f.max {
			return QR{}, &QRError{Kind: QRTooLarge, Field: f.name, Detail: fmt.Sprintf("%d > %d bytes", len(f.val), f.max)}
		}
		if !f.b64 {
			if !printable(f.val) {
				return QR{}, &QRError{Kind: QRBadText, Field: f.name}
			}
			continue
		}
		n, ok := decodedLen(f.val)
		if !ok {
			return QR{}, &QRError{Kind: QRBadBase64, Field: f.name}
		}
		if n < f.min {
			return QR{}, &QRError{Kind: QRBadBase64, Field: f.name, Detail: fmt.Sprintf("%d bytes decoded, want at least %d", n, f.min)}
		}
	}
	return q, nil
}

// asLink parses data as a hierarchical URL ("scheme://…"). An opaque
// "word:{…}" is not taken for one: that is a prefix, not a link.
func asLink(data []byte) (*url.URL, bool) {
	i := bytes.Index(data, []byte("://"))
	if i <= 0 || !isScheme(data[:i]) {
		return nil, false
	}
	u, err := url.Parse(string(data))
	return u, err == nil
}

func isScheme(b []byte) bool {
	for i, c := range b {
		letter := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
		if !letter && (i == 0 || !(c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.')) {
			return false
		}
	}
	return true
}

// parseLink finds the payment QR a link carries in its query or fragment
// parameters. A raw "+" is a plus under RFC 3986 and a space in an HTML
// form's encoding; both readings are tried, and a link they read as two
// different QRs is ambiguous.
func parseLink(u *url.URL) (QR, error) {
	var found []QR
	var firstErr error
	for _, raw := range linkValues(u) {
		for _, unescape := range []func(string) (string, error){url.PathUnescape, url.QueryUnescape} {
			v, err := unescape(raw)
			if err != nil {
				continue
			}
			v = strings.TrimSpace(v)
			if !strings.HasPrefix(v, "{") {
				continue
			}
			q, err := parseObject([]byte(v))
			switch {
			case err != nil:
				if firstErr == nil {
					firstErr = err
				}
			case !slices.Contains(found, q):
				found = append(found, q)
			}
		}
	}
	switch {
	case len(found) == 1:
		return found[0], nil
	case len(found) > 1:
		return QR{}, &QRError{Kind: QRAmbiguous, Detail: fmt.Sprintf("%d different QRs in the link", len(found))}
	case firstErr != nil:
		return QR{}, firstErr
	}
	return QR{}, &QRError{Kind: QRLink, Detail: "no QR object in the link"}
}

// linkValues are the raw (still escaped) values of a link's query and
// fragment parameters, and the whole fragment.
func linkValues(u *url.URL) []string {
	var out []string
	if f := u.EscapedFragment(); f != "" {
		out = append(out, f)
	}
	for _, part := range []string{u.RawQuery, u.EscapedFragment()} {
		for _, kv := range strings.Split(part, "&") {
			if _, v, ok := strings.Cut(kv, "="); ok {
				out = append(out, v)
			}
		}
	}
	return out
}

// decodedLen decodes standard base64 (padded, or unpadded as some encoders
// emit) and reports the decoded size.
func decodedLen(s string) (int, bool) {
	enc := base64.StdEncoding.Strict()
	if len(s)%4 != 0 {
		enc = base64.RawStdEncoding.Strict()
	}
	b, err := enc.DecodeString(s)
	return len(b), err == nil
}

func isDigits(b []byte) bool {
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// barcodeKind names a digits-only code for the log and display ("EAN-13"),
// so an operator sees the customer scanned a product, not a broken QR.
func barcodeKind(b []byte) string {
	name := ""
	switch len(b) {
	case 8:
		name = "EAN-8"
	case 12:
		name = "UPC-A"
	case 13:
		name = "EAN-13"
	case 14:
		name = "GTIN-14"
	default:
		return fmt.Sprintf("%d digits", len(b))
	}
	if !gtinCheckDigitOK(b) {
		return name + " (bad check digit)"
	}
	return name
}

// gtinCheckDigitOK applies the GS1 mod-10 check shared by EAN-8/13, UPC-A and
// GTIN-14: weights 3,1,3… from the digit left of the check digit.
func gtinCheckDigitOK(b []byte) bool {
	sum := 0
	for i, w := len(b)-2, 3; i >= 0; i, w = i-1, 4-w {
		sum += int(b[i]-'0') * w
	}
	return (10-sum%10)%10 == int(b[len(b)-1]-'0')
}

func printable(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return false
		}
	}
	return true
}

// safeFieldName names an unknown key in an error (and so in logs and on the
// display) only when it looks like a field name; anything else could be
// payload data.
func safeFieldName(k string) string {
	if len(k) == 0 || len(k) > 32 {
		return fmt.Sprintf("(%d-byte key)", len(k))
	}
	for i, c := range k {
		if !(c >= 'a' && c <= 'z' || c == '_' || i > 0 && c >= '0' && c <= '9') {
			return fmt.Sprintf("(%d-byte key)", len(k))
		}
	}
	return fmt.Sprintf("%q", k)
}
