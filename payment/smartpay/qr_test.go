package smartpay_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/url"
	"strings"
	"testing"

	"github.com/kioskd/kioskd/payment/smartpay"
)

var (
	ct  = base64.StdEncoding.EncodeToString(make([]byte, 256)) // RSA-2048 ciphertext size
	sig = base64.StdEncoding.EncodeToString(make([]byte, 71))  // ECDSA P-256 DER size
)

func qrJSON(fields ...string) string {
	return "{" + strings.Join(fields, ",") + "}"
}

func TestParseQR(t *testing.T) {
	id := `"id_loyalty":"u-1"`
	enc := `"encrypted":"` + ct + `"`
	sg := `"sign":"` + sig + `"`
	ok := qrJSON(id, enc, sg)
	for _, tc := range []struct {
		name  string
		in    string
		kind  smartpay.QRErrorKind
		field string
	}{
		{"valid", ok, -1, ""},
		{"valid with whitespace and CRLF", "  \t" + qrJSON(sg, enc, id) + "\r\n", -1, ""},
		{"valid unpadded base64", qrJSON(id, `"encrypted":"`+strings.TrimRight(base64.StdEncoding.EncodeToString(make([]byte, 100)), "=")+`"`, sg), -1, ""},
		{"empty", "", smartpay.QRNotJSON, ""},
		{"garbage", "hello", smartpay.QRNotJSON, ""},
		{"truncated", ok[:len(ok)-5], smartpay.QRNotJSON, ""},
		{"two objects", ok + ok, smartpay.QRNotJSON, ""},
		{"array", "[" + ok + "]", smartpay.QRNotObject, ""},
		{"string", `"abc"`, smartpay.QRNotObject, ""},
		{"number with dot", "12.5", smartpay.QRNotObject, ""},
		{"EAN-13", "4607001234567", smartpay.QRProductBarcode, ""},
		{"EAN-8", "96385074", smartpay.QRProductBarcode, ""},
		{"UPC-A", "036000291452", smartpay.QRProductBarcode, ""},
		{"digits with LF", "4600000000000\n", smartpay.QRProductBarcode, ""},
		{"missing sign", qrJSON(id, enc), smartpay.QRMissingField, "sign"},
		{"missing id", qrJSON(enc, sg), smartpay.QRMissingField, "id_loyalty"},
		{"extra field", qrJSON(id, enc, sg, `"amount":"1"`), smartpay.QRExtraField, `"amount"`},
		{"duplicate field", qrJSON(id, enc, sg, `"sign":"`+sig+`"`), smartpay.QRDuplicateField, "sign"},
		{"empty id", qrJSON(`"id_loyalty":""`, enc, sg), smartpay.QREmptyField, "id_loyalty"},
		{"number id", qrJSON(`"id_loyalty":5`, enc, sg), smartpay.QRWrongType, "id_loyalty"},
		{"null sign", qrJSON(id, enc, `"sign":null`), smartpay.QRWrongType, "sign"},
		{"object sign", qrJSON(id, enc, `"sign":{}`), smartpay.QRWrongType, "sign"},
		{"bad base64", qrJSON(id, `"encrypted":"not*base64!"`, sg), smartpay.QRBadBase64, "encrypted"},
		{"url base64", qrJSON(id, `"encrypted":"`+strings.ReplaceAll(strings.Repeat("ab+/", 20), "+/", "-_")+`"`, sg), smartpay.QRBadBase64, "encrypted"},
		{"short ciphertext", qrJSON(id, `"encrypted":"QUJD"`, sg), smartpay.QRBadBase64, "encrypted"},
		{"control char id", qrJSON(`"id_loyalty":"a\u0007b"`, enc, sg), smartpay.QRBadText, "id_loyalty"},
		{"long id", qrJSON(`"id_loyalty":"`+strings.Repeat("x", 257)+`"`, enc, sg), smartpay.QRTooLarge, "id_loyalty"},
		{"long sign", qrJSON(id, enc, `"sign":"`+strings.Repeat("A", 1404)+`"`), smartpay.QRTooLarge, "sign"},
		{"invalid UTF-8", "{\"id_loyalty\":\"\xff\",\"encrypted\":\"" + ct + "\",\"sign\":\"" + sig + "\"}", smartpay.QRBadText, ""},
		{"huge", strings.Repeat(" ", smartpay.MaxQRSize+1), smartpay.QRTooLarge, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q, err := smartpay.ParseQR([]byte(tc.in))
			if tc.kind < 0 {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if q.IDLoyalty != "u-1" || q.Sign != sig {
					t.Fatalf("fields not forwarded verbatim: %+v", q)
				}
				return
			}
			var qe *smartpay.QRError
			if !errors.As(err, &qe) || !errors.Is(err, smartpay.ErrInvalidQR) {
				t.Fatalf("got %v, want *QRError %s", err, tc.kind)
			}
			if qe.Kind != tc.kind || qe.Field != tc.field {
				t.Fatalf("got %s %q, want %s %q (%v)", qe.Kind, qe.Field, tc.kind, tc.field, err)
			}
			if q != (smartpay.QR{}) {
				t.Fatalf("refused QR returned fields: %+v", q)
			}
		})
	}
}

// What QR generators put around the object: accepted when the object can
// be told unambiguously, refused with a reason otherwise.
func TestParseQRGeneratorForms(t *testing.T) {
	// base64 with "/" and "+", as real ciphertexts have.
	enc := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0xfb, 0xef, 0xff}, 86))
	want := smartpay.QR{IDLoyalty: "u-1", Encrypted: enc, Sign: sig}
	obj := `{"id_loyalty":"u-1","encrypted":"` + enc + `","sign":"` + sig + `"}`
	other := strings.Replace(obj, "u-1", "u-2", 1)
	var pretty bytes.Buffer
	if err := json.Indent(&pretty, []byte(obj), "", "    "); err != nil {
		t.Fatal(err)
	}
	// RFC 3986 escaping of the JSON punctuation, "+" and "/" left as they are.
	rfc3986 := strings.NewReplacer(`{`, "%7B", `}`, "%7D", `"`, "%22", `:`, "%3A", `,`, "%2C").Replace
	for _, tc := range []struct {
		name string
		in   string
		kind smartpay.QRErrorKind // -1: accepted as want
	}{
		{"bare", obj, -1},
		{"utf-8 bom", "\uFEFF" + obj, -1},
		{"bom inside whitespace", " \uFEFF" + obj + "\r\n", -1},
		{"pretty-printed", pretty.String(), -1},
		{"pretty-printed crlf", strings.ReplaceAll(pretty.String(), "\n", "\r\n") + "\r\n", -1},
		{"escaped slashes (php)", strings.ReplaceAll(obj, "/", `\/`), -1},
		{"unicode escapes", strings.Replace(obj, `"u-1"`, `"\u0075\u002d1"`, 1), -1},
		{"link, query, form-encoded", "https://pay.example.ru/qr?v=1&data=" + url.QueryEscape(obj), -1},
		{"link, query, rfc 3986 with raw +", "kdpay://pay?qr=" + rfc3986(obj), -1},
		{"link, fragment parameter", "https://pay.example.ru/#qr=" + url.QueryEscape(obj), -1},
		{"link, whole fragment", "https://pay.example.ru/app#" + url.PathEscape(obj), -1},
		{"link, same QR twice", "https://x.example/?a=" + url.QueryEscape(obj) + "&b=" + url.QueryEscape(obj), -1},
		{"link, two QRs", "https://x.example/?a=" + url.QueryEscape(obj) + "&b=" + url.QueryEscape(other), smartpay.QRAmbiguous},
		// "u+1" is "u 1" in a form's encoding, and without a "+" in the
		// base64 both readings are QRs.
		{"link, + read two ways", "https://x.example/?qr=" + rfc3986(qrJSON(`"id_loyalty":"u+1"`, `"encrypted":"`+ct+`"`, `"sign":"`+sig+`"`)), smartpay.QRAmbiguous},
		{"link without a QR (SBP)", "https://qr.nspk.ru/AS1000670LSS7DN18SJQDNP4B05KLJL2?type=01&bank=100000000111", smartpay.QRLink},
		{"link with a broken QR", "https://x.example/?qr=" + url.QueryEscape(strings.Replace(obj, `,"sign":"`+sig+`"`, "", 1)), smartpay.QRMissingField},
		{"opaque word: prefix", "kdpay:" + obj, smartpay.QRWrapped},
		{"data: uri", "data:application/json," + obj, smartpay.QRWrapped},
		{"aim id (a host passing raw scanner bytes)", "]Q1" + obj, smartpay.QRWrapped},
		{"code id", "s" + obj, smartpay.QRWrapped},
		{"suffix", obj + "QR", smartpay.QRNotJSON},
		{"nul padding", obj + "\x00\x00", smartpay.QRNotJSON},
		{"json encoded twice", jsonString(obj), smartpay.QRNotObject},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q, err := smartpay.ParseQR([]byte(tc.in))
			if tc.kind < 0 {
				if err != nil || q != want {
					t.Fatalf("got %+v, %v; want %+v", q, err, want)
				}
				return
			}
			var qe *smartpay.QRError
			if !errors.As(err, &qe) || qe.Kind != tc.kind {
				t.Fatalf("got %v, want %s", err, tc.kind)
			}
			if strings.Contains(err.Error(), enc[:16]) {
				t.Fatalf("error %q carries the payload", err)
			}
		})
	}
}

func TestParseQRBarcodeDetail(t *testing.T) {
	for in, want := range map[string]string{
		"4607001234567": "EAN-13 (bad check digit)",
		"4006381333931": "EAN-13",
		"96385074":      "EAN-8",
		"036000291452":  "UPC-A",
		"12345":         "5 digits",
	} {
		_, err := smartpay.ParseQR([]byte(in))
		var qe *smartpay.QRError
		if !errors.As(err, &qe) || qe.Detail != want {
			t.Errorf("%s: got %v, want detail %q", in, err, want)
		}
	}
}

// The error never carries the payload: it may hold an encrypted OTP.
func TestQRErrorHasNoPayload(t *testing.T) {
	secret := base64.StdEncoding.EncodeToString([]byte("0123456789abcdefSECRET"))
	for _, in := range []string{
		qrJSON(`"id_loyalty":"u"`, `"encrypted":"`+secret+`"`),
		qrJSON(`"id_loyalty":"u"`, `"encrypted":"`+secret+`"`, `"sign":"`+secret+`"`, `"x":"`+secret+`"`),
		qrJSON(`"id_loyalty":"u"`, `"encrypted":"`+secret+`"`, `"sign":"`+secret+`*"`),
		qrJSON(`"` + secret + `":"u"`),
	} {
		_, err := smartpay.ParseQR([]byte(in))
		if err == nil || strings.Contains(err.Error(), secret[:12]) {
			t.Errorf("error %q for %s", err, in)
		}
	}
}

func FuzzParseQR(f *testing.F) {
	f.Add([]byte(qrJSON(`"id_loyalty":"u-1"`, `"encrypted":"`+ct+`"`, `"sign":"`+sig+`"`)))
	f.Add([]byte(`{"id_loyalty":"","encrypted":1}`))
	f.Add([]byte("4607001234567\r\n"))
	f.Add([]byte(`[{"a":1}]`))
	f.Add([]byte(`{"id_loyalty":"\u0000","encrypted":"=","sign":"A"}`))
	ok := qrJSON(`"id_loyalty":"u-1"`, `"encrypted":"`+ct+`"`, `"sign":"`+sig+`"`)
	f.Add([]byte("\uFEFF" + ok + "\r\n"))
	f.Add([]byte("https://pay.example.ru/qr?a=1&qr=" + url.QueryEscape(ok) + "#x=" + url.PathEscape(ok)))
	f.Add([]byte("kdpay://p?qr=%7B%22id_loyalty%22:%22u+1%22}"))
	f.Add([]byte("]Q1" + ok))
	f.Fuzz(func(t *testing.T, data []byte) {
		q, err := smartpay.ParseQR(data)
		if err != nil {
			var qe *smartpay.QRError
			if !errors.As(err, &qe) {
				t.Fatalf("error of type %T: %v", err, err)
			}
			if q != (smartpay.QR{}) {
				t.Fatal("fields returned with an error")
			}
			return
		}
		if q.IDLoyalty == "" || q.Encrypted == "" || q.Sign == "" || len(data) > smartpay.MaxQRSize {
			t.Fatalf("accepted %q as %+v", data, q)
		}
		// Accepted fields must survive a round trip: the kassa forwards them verbatim.
		back := []byte(qrJSON(`"id_loyalty":`+jsonString(q.IDLoyalty), `"encrypted":`+jsonString(q.Encrypted), `"sign":`+jsonString(q.Sign)))
		q2, err := smartpay.ParseQR(back)
		if err != nil || q2 != q {
			t.Fatalf("round trip of %+v: %+v %v", q, q2, err)
		}
	})
}

func jsonString(s string) string {
	b, err := json.Marshal(s)
	if err != nil {
		panic(err)
	}
	return string(b)
}
