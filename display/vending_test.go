package display

import "testing"

// The product is the title of a vending screen, with the state's title
// under it (TestShortFits checks the screens' short texts).
func TestVendingTexts(t *testing.T) {
	got := Long(Screen{State: Selected, Product: " Кофе американо ", Amount: 12000})
	if want := (Text{"Кофе американо", "Покажите QR-код для оплаты", "120,00\u00a0₽"}); got != want {
		t.Errorf("selected = %+v, want %+v", got, want)
	}
	if got := Short(Screen{State: VendFailed, Amount: 8000, Lang: English}); got != (Text{"Vend failed", "Payment returned", "RUB 80.00"}) {
		t.Errorf("vend failed en = %+v", got)
	}
	if ToneOf(Selected) != ToneIdle || ToneOf(VendFailed) != ToneFailure {
		t.Errorf("tones %v %v", ToneOf(Selected), ToneOf(VendFailed))
	}
}
