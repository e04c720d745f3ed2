package term

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/creack/pty"
	"github.com/makiuchi-d/gozxing"
	zxqr "github.com/makiuchi-d/gozxing/qrcode"

	"github.com/kioskd/kioskd/display"
	"github.com/kioskd/kioskd/display/displaytest"
	"github.com/kioskd/kioskd/scanner/settings"
)

func TestPlain(t *testing.T) {
	var buf bytes.Buffer
	d := New(&buf, Auto) // a buffer is no terminal: plain lines
	ctx := context.Background()
	for _, s := range []display.Screen{
		{State: display.Ready},
		{State: display.Paid, Amount: 123456},
		{State: display.Declined, Message: "Card blocked", Lang: display.English, Amount: 100},
	} {
		if err := d.Show(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	want := "[ready] Покажите QR-код | Поднесите QR-код из приложения к сканеру\n" +
		"[paid] Оплата прошла | 1 234,56 ₽ | Спасибо за покупку!\n" +
		"[declined] Payment declined | RUB 1.00 | Card blocked\n"
	if buf.String() != want {
		t.Errorf("plain output:\n%s\nwant:\n%s", buf.String(), want)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if err := d.Show(ctx, display.Screen{}); err == nil {
		t.Error("Show after Close succeeded")
	}
}

// TestANSIGolden keeps the exact escape sequences of two consecutive boxes
// (the second redraws over the first) in testdata/box.golden.
func TestANSIGolden(t *testing.T) {
	var buf bytes.Buffer
	d := New(&buf, ANSI)
	ctx := context.Background()
	for _, s := range []display.Screen{{State: display.Paying, Amount: 12345}, {State: display.Paid, Amount: 12345}} {
		if err := d.Show(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join("testdata", "box.golden")
	if want := displaytest.Golden(t, path, buf.Bytes()); !bytes.Equal(buf.Bytes(), want) {
		t.Errorf("ANSI output differs from %s:\n%q", path, buf.String())
	}
	// Every line of the box is the same width on screen.
	for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		if n := visible(strings.ReplaceAll(l, "\r", "")); n != inner+4 {
			t.Errorf("line %q is %d columns", l, n)
		}
	}
}

// TestTerminalDetected writes to a real pty: the display must notice it is
// a terminal and draw the box, then redraw it in place.
func TestTerminalDetected(t *testing.T) {
	master, slave, err := pty.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer master.Close()
	defer slave.Close()
	d := New(slave, Auto)
	if !d.ansi {
		t.Fatal("a pty was not taken for a terminal")
	}
	got := make(chan []byte)
	go func() {
		// Read what two boxes take; the pty turns \n into \r\n.
		var b bytes.Buffer
		buf := make([]byte, 4096)
		for b.Len() < 2000 {
			n, err := master.Read(buf)
			b.Write(buf[:n])
			if err != nil || bytes.Count(b.Bytes(), []byte("╯")) == 2 {
				break
			}
		}
		got <- b.Bytes()
	}()
	ctx := context.Background()
	_ = d.Show(ctx, display.Screen{State: display.Paying, Amount: 12345})
	_ = d.Show(ctx, display.Screen{State: display.Paid, Amount: 12345})
	select {
	case b := <-got:
		s := string(b)
		for _, want := range []string{"\x1b[32m", "Оплата прошла", "123,45 ₽", "\x1b[6A"} {
			if !strings.Contains(s, want) {
				t.Errorf("terminal output lacks %q:\n%q", want, s)
			}
		}
	case <-time.After(10 * time.Second):
		t.Fatal("nothing arrived on the pty")
	}
	if IsTerminal(io.Discard) {
		t.Error("io.Discard taken for a terminal")
	}
}

// mode: lines keeps a terminal to one line per screen, for when other
// output shares it (the vending demo's machine).
func TestModeKey(t *testing.T) {
	var d settings.Decoder
	e, ok := display.Drivers.Decode(&d, settings.Flat("driver", "term", "mode", "lines"), "displays[0]")
	if !ok || len(d.Problems()) > 0 || e.Settings.(Settings).Mode != Plain || Plain.String() != "lines" {
		t.Fatalf("decoded %+v, problems %+v", e, d.Problems())
	}
	d = settings.Decoder{}
	display.Drivers.Decode(&d, settings.Flat("driver", "term", "mode", "fancy"), "displays[0]")
	if p := d.Problems(); len(p) != 1 || p[0].Msg != `want one of auto, box, lines, got "fancy"` {
		t.Errorf("problems %+v", p)
	}
}

// The receipt screen draws the receipt's QR code in the box, and a phone
// could read it: the half blocks on the screen, turned back into modules,
// decode (gozxing) to the receipt string. The next, shorter box clears the
// lines the code took.
func TestReceiptQR(t *testing.T) {
	const receipt = "t=20260115T1432&s=149.00&fn=9999078900000961&i=123456&fp=4294967295&n=1"
	var buf bytes.Buffer
	d := New(&buf, ANSI)
	ctx := context.Background()
	s := display.Screen{State: display.Receipt, Amount: 14900,
		Receipt: display.FiscalReceipt{QR: receipt, FDNumber: 123456, FiscalSign: "4294967295"}}
	if err := d.Show(ctx, s); err != nil {
		t.Fatal(err)
	}
	drawn := buf.String()
	var rows []string
	for _, l := range strings.Split(drawn, "\n") {
		if n := visible(strings.ReplaceAll(l, "\r", "")); l != "" && n != inner+4 {
			t.Errorf("line %q is %d columns", l, n)
		}
		// The code is what lies between its first and last block.
		first, last := strings.IndexAny(l, "█▀▄"), strings.LastIndexAny(l, "█▀▄")
		if first >= 0 {
			rows = append(rows, l[first:last+len("█")])
		}
	}
	if got := decodeHalfBlocks(t, rows); got != receipt {
		t.Fatalf("the box's QR code reads %q, want %q", got, receipt)
	}
	if !strings.Contains(drawn, "Ваш чек") || !strings.Contains(drawn, "149,00 ₽") {
		t.Errorf("receipt box lacks its texts:\n%s", drawn)
	}
	buf.Reset()
	if err := d.Show(ctx, display.Screen{State: display.Ready}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), fmt.Sprintf("\x1b[%dA", len(rows)+7)) || !strings.HasSuffix(buf.String(), "\x1b[J") {
		t.Errorf("the box after the receipt does not redraw over it and clear the rest: %q", buf.String())
	}

	buf.Reset()
	if err := New(&buf, Plain).Show(ctx, s); err != nil {
		t.Fatal(err)
	}
	if want := "[receipt] Ваш чек | 149,00 ₽ | Отсканируйте QR-код камерой телефона | " + receipt + "\n"; buf.String() != want {
		t.Errorf("plain receipt line %q, want %q", buf.String(), want)
	}
}

// decodeHalfBlocks turns rows of half blocks (display.QRText: a full block
// is two light modules, a space two dark) into an image and decodes it.
func decodeHalfBlocks(t *testing.T, rows []string) string {
	t.Helper()
	const px = 4 // pixels per module
	width := utf8.RuneCountInString(rows[0])
	img := image.NewGray(image.Rect(0, 0, width*px, len(rows)*2*px))
	for y, row := range rows {
		for x, r := range []rune(row) {
			top, bottom := r == ' ' || r == '▄', r == ' ' || r == '▀' // dark halves
			for i, dark := range []bool{top, bottom} {
				c := color.Gray{Y: 255}
				if dark {
					c = color.Gray{}
				}
				draw.Draw(img, image.Rect(x*px, (2*y+i)*px, (x+1)*px, (2*y+i+1)*px), &image.Uniform{c}, image.Point{}, draw.Src)
			}
		}
	}
	bmp, err := gozxing.NewBinaryBitmapFromImage(img)
	if err != nil {
		t.Fatal(err)
	}
	res, err := zxqr.NewQRCodeReader().Decode(bmp, nil)
	if err != nil {
		t.Fatalf("the drawn QR code does not decode: %v\n%s", err, strings.Join(rows, "\n"))
	}
	return res.GetText()
}
