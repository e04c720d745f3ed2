package fiscal

import (
	"fmt"
	"math/big"
	"strconv"
	"strings"
)

// Rubles formats kopecks as decimal rubles with two decimals, the way the
// backends and the receipt QR want money: 12345 → "123.45", 5 → "0.05",
// -150 → "-1.50". Built from the integers, so no float rounding.
func Rubles(kopecks int64) string {
	sign := ""
	u := uint64(kopecks)
	if kopecks < 0 {
		sign = "-"
		u = uint64(-(kopecks + 1)) + 1 // also right for math.MinInt64
	}
	return fmt.Sprintf("%s%d.%02d", sign, u/100, u%100)
}

// ParseRubles reads a decimal number of rubles (a JSON number from a
// backend: "123.45", "123.4", "123", "1.2E2") as kopecks. A value that is
// not a whole number of kopecks is accepted only when it is float noise
// within a millionth of a kopeck ("72.33999999999999"), then rounded.
func ParseRubles(s string) (int64, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, fmt.Errorf("fiscal: empty amount")
	}
	var r big.Rat
	if _, ok := r.SetString(s); !ok || strings.ContainsAny(s, "/") {
		return 0, fmt.Errorf("fiscal: amount %q is not a decimal number", s)
	}
	r.Mul(&r, big.NewRat(100, 1))
	if r.IsInt() {
		if !r.Num().IsInt64() {
			return 0, fmt.Errorf("fiscal: amount %q out of range", s)
		}
		return r.Num().Int64(), nil
	}
	// Round to the nearest kopeck and accept it only if it is that close.
	f, _ := r.Float64()
	n := int64(f + 0.5)
	if f < 0 {
		n = int64(f - 0.5)
	}
	var diff big.Rat
	diff.Sub(&r, new(big.Rat).SetInt64(n))
	if diff.Abs(&diff).Cmp(big.NewRat(1, 1_000_000)) > 0 {
		return 0, fmt.Errorf("fiscal: amount %q is not a whole number of kopecks", s)
	}
	return n, nil
}

// Quantity is an amount of goods in thousandths of a unit (54-ФЗ: three
// decimals): One is one piece, 1500 one and a half kilograms.
type Quantity int64

// One is a quantity of one unit.
const One Quantity = 1000

// String formats q as a decimal without trailing zeros: "1", "1.5", "0.125".
func (q Quantity) String() string {
	if q < 0 {
		return "-" + (-q).String()
	}
	s := strconv.FormatInt(int64(q)/1000, 10)
	if frac := int64(q) % 1000; frac != 0 {
		s += "." + strings.TrimRight(fmt.Sprintf("%03d", frac), "0")
	}
	return s
}

// Float64 returns q in units, for wire formats that take a float (Smart
// Pay's v2 receipt). Three decimals are exact enough there.
func (q Quantity) Float64() float64 { return float64(q) / 1000 }

// ParseQuantity reads a decimal quantity with at most three decimals.
func ParseQuantity(s string) (Quantity, error) {
	var r big.Rat
	if _, ok := r.SetString(strings.TrimSpace(s)); !ok {
		return 0, fmt.Errorf("fiscal: quantity %q is not a decimal number", s)
	}
	r.Mul(&r, big.NewRat(1000, 1))
	if !r.IsInt() || !r.Num().IsInt64() {
		return 0, fmt.Errorf("fiscal: quantity %q has more than three decimals or is out of range", s)
	}
	return Quantity(r.Num().Int64()), nil
}

// lineAmount is price × quantity in kopecks, rounded half up as a ККТ does.
// The bounds checked by Item.validate keep the product inside int64.
func lineAmount(price int64, q Quantity) int64 {
	return (price*int64(q) + 500) / 1000
}
