package display

import (
	"strconv"
	"strings"
)

// Tone is the visual meaning of a State, so drivers pick colours and icons
// without knowing every state.
type Tone int

// Tones, from calm to alarming.
const (
	ToneIdle    Tone = iota // waiting for the customer
	ToneBusy                // something is in progress, wait
	ToneSuccess             // the customer may go
	ToneFailure             // the payment did not happen
	ToneWarning             // the terminal cannot take payments now
)

var toneNames = [...]string{"idle", "busy", "success", "failure", "warning"}

// String returns the tone's name, used as a CSS hook by the web display.
func (t Tone) String() string {
	if t < 0 || int(t) >= len(toneNames) {
		return "unknown"
	}
	return toneNames[t]
}

// Text is the wording of one Screen: a title, a detail line and the
// formatted amount ("" when the screen shows none).
type Text struct {
	Title  string
	Detail string
	Amount string
}

type wording struct {
	tone       Tone
	showAmount bool
	ruShort    [2]string // each at most 20 characters, CP866-safe
	enShort    [2]string
	ruLong     [2]string
	enLong     [2]string
}

// words holds every customer-facing text; the short forms fit a 2x20 pole
// display (checked by tests) and use no characters outside CP866.
var words = [...]wording{
	Ready: {ToneIdle, false,
		[2]string{"Покажите QR-код", "для оплаты"},
		[2]string{"Show your QR code", "to pay"},
		[2]string{"Покажите QR-код", "Поднесите QR-код из приложения к сканеру"},
		[2]string{"Show your QR code", "Hold the QR code from the app to the scanner"}},
	CodeAccepted: {ToneBusy, false,
		[2]string{"Код принят", "Подождите..."},
		[2]string{"Code accepted", "Please wait..."},
		[2]string{"Код принят", "Подождите, пожалуйста"},
		[2]string{"Code accepted", "Please wait a moment"}},
	WaitingAmount: {ToneBusy, false,
		[2]string{"Код принят", "Ожидание суммы"},
		[2]string{"Code accepted", "Waiting for amount"},
		[2]string{"Код принят", "Ожидаем сумму покупки"},
		[2]string{"Code accepted", "Waiting for the purchase amount"}},
	Paying: {ToneBusy, true,
		[2]string{"Оплата", "Подождите..."},
		[2]string{"Paying", "Please wait..."},
		[2]string{"Идёт оплата", "Подождите, пожалуйста"},
		[2]string{"Payment in progress", "Please wait a moment"}},
	Checking: {ToneBusy, true,
		[2]string{"Проверка оплаты", "Подождите..."},
		[2]string{"Checking payment", "Please wait..."},
		[2]string{"Проверяем оплату", "Подождите, пожалуйста"},
		[2]string{"Checking the payment", "Please wait a moment"}},
	Paid: {ToneSuccess, true,
		[2]string{"Оплачено", "Спасибо!"},
		[2]string{"Paid", "Thank you!"},
		[2]string{"Оплата прошла", "Спасибо за покупку!"},
		[2]string{"Payment successful", "Thank you for your purchase!"}},
	Declined: {ToneFailure, true,
		[2]string{"Отказ в оплате", "Попробуйте ещё раз"},
		[2]string{"Payment declined", "Please try again"},
		[2]string{"Оплата не прошла", "Попробуйте ещё раз"},
		[2]string{"Payment declined", "Please try again"}},
	Cancelled: {ToneFailure, false,
		[2]string{"Оплата отменена", ""},
		[2]string{"Payment cancelled", ""},
		[2]string{"Оплата отменена", "Покупка не оплачена"},
		[2]string{"Payment cancelled", "The purchase was not paid"}},
	RefundProgress: {ToneBusy, true,
		[2]string{"Возврат", "Подождите..."},
		[2]string{"Refund", "Please wait..."},
		[2]string{"Оформляем возврат", "Подождите, пожалуйста"},
		[2]string{"Refund in progress", "Please wait a moment"}},
	RefundDone: {ToneSuccess, true,
		[2]string{"Возврат выполнен", ""},
		[2]string{"Refund complete", ""},
		[2]string{"Возврат выполнен", "Деньги вернутся на ваш счёт"},
		[2]string{"Refund complete", "The money will return to your account"}},
	Offline: {ToneWarning, false,
		[2]string{"Сервис недоступен", "Попробуйте позже"},
		[2]string{"Service unavailable", "Try again later"},
		[2]string{"Оплата QR недоступна", "Сервис оплаты не отвечает, попробуйте позже"},
		[2]string{"QR payment unavailable", "The payment service is not answering, try again later"}},
	DeviceFault: {ToneWarning, false,
		[2]string{"Терминал неисправен", "Позовите персонал"},
		[2]string{"Out of order", "Please call staff"},
		[2]string{"Терминал временно не работает", "Обратитесь к сотруднику магазина"},
		[2]string{"Terminal out of order", "Please ask a member of staff for help"}},
	BadCode: {ToneFailure, false,
		[2]string{"Неверный QR-код", "Покажите код оплаты"},
		[2]string{"Wrong QR code", "Show payment code"},
		[2]string{"Этот QR-код не подходит", "Покажите QR-код для оплаты из приложения"},
		[2]string{"This QR code cannot be used", "Show the payment QR code from the app"}},
	Busy: {ToneBusy, false,
		[2]string{"Подождите", "Идёт оплата"},
		[2]string{"Please wait", "Payment in progress"},
		[2]string{"Подождите", "Идёт оплата предыдущей покупки"},
		[2]string{"Please wait", "The previous payment is in progress"}},
	Starting: {ToneBusy, false,
		[2]string{"Запуск...", "Подождите"},
		[2]string{"Starting...", "Please wait"},
		[2]string{"Терминал запускается", "Оплата QR будет доступна через несколько секунд"},
		[2]string{"Starting up", "QR payment will be available in a few seconds"}},
}

// ToneOf returns the visual meaning of a state; unknown states are warnings.
func ToneOf(s State) Tone {
	if s < 0 || int(s) >= len(words) {
		return ToneWarning
	}
	return words[s].tone
}

// Short returns the wording for a 2x20 pole display: titles fit 20 columns,
// only CP866 characters are used and the amount says "руб." instead of "₽".
// Message, when set, replaces the detail line.
func Short(s Screen) Text { return text(s, true) }

// Long returns the wording for the web page, the terminal and the log.
// Message, when set, replaces the detail line.
func Long(s Screen) Text { return text(s, false) }

func text(s Screen, short bool) Text {
	w, ok := wordingOf(s.State)
	var pair [2]string
	switch {
	case lang(s.Lang) == English && short:
		pair = w.enShort
	case lang(s.Lang) == English:
		pair = w.enLong
	case short:
		pair = w.ruShort
	default:
		pair = w.ruLong
	}
	t := Text{Title: pair[0], Detail: pair[1]}
	if !ok {
		// An unknown state must still tell the customer not to walk away
		// with goods; the warning texts are the safest fit.
		t.Title += " (" + s.State.String() + ")"
	}
	if m := strings.TrimSpace(s.Message); m != "" {
		t.Detail = m
	}
	if w.showAmount && s.Amount != 0 {
		t.Amount = formatAmount(s.Amount, lang(s.Lang), short)
	}
	return t
}

func wordingOf(s State) (wording, bool) {
	if s < 0 || int(s) >= len(words) {
		return words[DeviceFault], false
	}
	return words[s], true
}

// lang maps an empty or unknown language to the default, Russian.
func lang(l Lang) Lang {
	if l == English {
		return English
	}
	return Russian
}

// FormatAmount formats kopecks for the web page and the terminal:
// "1 234,56 ₽" (non-breaking spaces) in Russian, "RUB 1,234.56" in English.
func FormatAmount(kopecks int64, l Lang) string { return formatAmount(kopecks, lang(l), false) }

// FormatAmountShort formats kopecks for a pole display, whose code pages have
// no "₽": "1 234,56 руб." in Russian, "RUB 1,234.56" in English.
func FormatAmountShort(kopecks int64, l Lang) string {
	return formatAmount(kopecks, lang(l), true)
}

func formatAmount(kopecks int64, l Lang, short bool) string {
	neg := kopecks < 0
	u := uint64(kopecks)
	if neg {
		u = -u // two's complement: correct for math.MinInt64 too
	}
	rubles, kop := u/100, u%100
	digits := strconv.FormatUint(rubles, 10)
	sep, dec := "\u00a0", ","
	if short {
		sep = " "
	}
	if l == English {
		sep, dec = ",", "."
	}
	var b strings.Builder
	if neg {
		b.WriteByte('-')
	}
	if l == English {
		b.Reset()
		b.WriteString("RUB ")
		if neg {
			b.WriteByte('-')
		}
	}
	for i, c := range digits {
		if i > 0 && (len(digits)-i)%3 == 0 {
			b.WriteString(sep)
		}
		b.WriteRune(c)
	}
	b.WriteString(dec)
	if kop < 10 {
		b.WriteByte('0')
	}
	b.WriteString(strconv.FormatUint(kop, 10))
	if l == Russian {
		if short {
			b.WriteString(" руб.")
		} else {
			b.WriteString("\u00a0₽")
		}
	}
	return b.String()
}
