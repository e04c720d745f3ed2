package qibixx

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ErrNotRepresentable is wrapped by Money conversions given an amount that
// is not a whole number of the machine's money units (or of kopecks).
var ErrNotRepresentable = errors.New("qibixx: amount not representable exactly")

// Money converts between kopecks and the amounts on the adapter's lines.
//
// MDB counts money in units: a price P on the bus means P × ScaleFactor ×
// 10^-DecimalPlaces of the currency (MDB/ICP 4.2, Reader Config). The
// adapter writes and reads amounts as that currency value in decimal, e.g.
// "1.50" for P = 150 with scale 1 and 2 decimals [I: every public client and
// the vendor's examples use scale 1; that the adapter applies the scale
// factor to the text is inferred].
//
// Every unit must be a whole number of kopecks, so that every price the
// machine can ask is exactly payable: scale 1 with 2 decimals (1 kopeck, the
// default), scale 5 with 2 decimals (5 kopecks), scale 1 with 0 decimals (1
// ruble)… No floats anywhere: amounts are parsed as digit strings.
type Money struct {
	ScaleFactor   int // 1–255
	DecimalPlaces int // 0–3
}

// NewMoney validates a scale factor and a number of decimal places.
func NewMoney(scale, places int) (Money, error) {
	m := Money{ScaleFactor: scale, DecimalPlaces: places}
	return m, m.Validate()
}

// Validate checks the ranges MDB allows and that a unit is a whole number of
// kopecks.
func (m Money) Validate() error {
	if m.ScaleFactor < 1 || m.ScaleFactor > 255 {
		return fmt.Errorf("qibixx: scale factor %d: want 1–255 (MDB sends it in one byte)", m.ScaleFactor)
	}
	if m.DecimalPlaces < 0 || m.DecimalPlaces > 3 {
		return fmt.Errorf("qibixx: decimal places %d: want 0–3", m.DecimalPlaces)
	}
	if m.DecimalPlaces == 3 && m.ScaleFactor%10 != 0 {
		return fmt.Errorf("qibixx: scale factor %d with 3 decimal places makes a unit of %d/10 kopeck, which cannot be paid: use 2 decimal places or a scale factor that is a multiple of 10",
			m.ScaleFactor, m.ScaleFactor)
	}
	return nil
}

// Unit returns the kopecks in one MDB money unit.
func (m Money) Unit() int64 {
	switch m.DecimalPlaces {
	case 0:
		return int64(m.ScaleFactor) * 100
	case 1:
		return int64(m.ScaleFactor) * 10
	case 2:
		return int64(m.ScaleFactor)
	}
	return int64(m.ScaleFactor) / 10
}

// Kopecks converts an amount written by the adapter ("1.50", "2", "0.5") to
// kopecks. It fails, wrapping ErrNotRepresentable, when the amount has a
// fraction of a kopeck or is not a whole number of units.
func (m Money) Kopecks(amount string) (int64, error) {
	if !validAmount(amount) {
		return 0, fmt.Errorf("qibixx: amount %q: want digits with an optional decimal point", amount)
	}
	whole, frac, _ := strings.Cut(amount, ".")
	rubles, err := strconv.ParseInt(whole, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("qibixx: amount %q: %w", amount, err)
	}
	if rest := strings.TrimRight(frac, "0"); len(rest) > 2 {
		return 0, fmt.Errorf("%w: %s has a fraction of a kopeck", ErrNotRepresentable, amount)
	}
	frac = (frac + "00")[:2]
	kop, _ := strconv.ParseInt(frac, 10, 64) // two digits, checked by validAmount
	k := rubles*100 + kop
	if k%m.Unit() != 0 {
		return 0, fmt.Errorf("%w: %s is not a whole number of the machine's money unit (%d kopecks)",
			ErrNotRepresentable, amount, m.Unit())
	}
	return k, nil
}

// Format writes kopecks as the adapter expects them, with DecimalPlaces
// decimals ("1.50"). It fails, wrapping ErrNotRepresentable, for a negative
// amount or one that is not a whole number of units.
func (m Money) Format(kopecks int64) (string, error) {
	if kopecks < 0 {
		return "", fmt.Errorf("%w: negative amount %d", ErrNotRepresentable, kopecks)
	}
	if kopecks%m.Unit() != 0 {
		return "", fmt.Errorf("%w: %d kopecks is not a whole number of the machine's money unit (%d kopecks)",
			ErrNotRepresentable, kopecks, m.Unit())
	}
	rub, kop := kopecks/100, kopecks%100
	switch m.DecimalPlaces {
	case 0:
		return strconv.FormatInt(rub, 10), nil
	case 1:
		return fmt.Sprintf("%d.%d", rub, kop/10), nil
	case 2:
		return fmt.Sprintf("%d.%02d", rub, kop), nil
	}
	return fmt.Sprintf("%d.%02d0", rub, kop), nil
}
