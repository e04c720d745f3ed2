package vmcsim

import (
	"fmt"
	"strconv"
	"strings"
)

// money is the machine's MDB money setting, as the adapter was configured:
// a price P on the bus is P × scale × 10^-places rubles. It is written here
// independently of the driver's qibixx.Money so that the two check each
// other over the pty.
type money struct{ scale, places int }

// moneyFrom reads the adapter's SETCONF values; MDB's common setting (1, 2)
// where a key was not set.
func moneyFrom(conf map[string]string) money {
	m := money{scale: 1, places: 2}
	if v, err := strconv.Atoi(conf["mdb-scale-factor"]); err == nil && v > 0 {
		m.scale = v
	}
	if v, err := strconv.Atoi(conf["mdb-decimal-places"]); err == nil && v >= 0 && v <= 3 {
		m.places = v
	}
	return m
}

// text writes kopecks the way the adapter reports a price: the currency
// value with places decimals. The price must be P × scale units exactly.
func (m money) text(kopecks int64) (string, error) {
	v := kopecks // in 10^-places rubles, once scaled below
	for range m.places {
		v *= 10
	}
	if kopecks < 0 || v%100 != 0 || (v/100)%int64(m.scale) != 0 {
		return "", fmt.Errorf("vmcsim: %d kopecks is no whole MDB price with scale factor %d and %d decimal places",
			kopecks, m.scale, m.places)
	}
	s := strconv.FormatInt(v/100, 10)
	if m.places == 0 {
		return s, nil
	}
	if len(s) <= m.places {
		s = strings.Repeat("0", m.places-len(s)+1) + s
	}
	return s[:len(s)-m.places] + "." + s[len(s)-m.places:], nil
}

// kopecks reads an amount kioskd wrote (C,VEND,<amount>): exact, or an error.
func (m money) kopecks(s string) (int64, error) {
	whole, frac, _ := strings.Cut(s, ".")
	if len(frac) > 2 && strings.Trim(frac[2:], "0") != "" {
		return 0, fmt.Errorf("vmcsim: amount %q has a fraction of a kopeck", s)
	}
	frac = (frac + "00")[:2]
	w, err := strconv.ParseUint(whole, 10, 40)
	if err != nil {
		return 0, fmt.Errorf("vmcsim: amount %q: %w", s, err)
	}
	f, err := strconv.ParseUint(frac, 10, 8)
	if err != nil {
		return 0, fmt.Errorf("vmcsim: amount %q: %w", s, err)
	}
	return int64(w*100 + f), nil
}

// rubles formats kopecks for people: 95.50 ₽.
func rubles(k int64) string { return fmt.Sprintf("%d.%02d ₽", k/100, k%100) }
