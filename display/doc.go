// The Screen value says what happened; Short and Long turn it into words in
// the customer's language (Short for 2x20 pole displays, Long for the web page
// and the terminal). A Fanout shows every Screen on all configured displays at
// once so that one slow or unplugged display never delays the others or the
// payment flow. Drivers register themselves at import time with
// settings.Register(Drivers, …), each with its own Settings type that
// declares its devices.yaml keys, defaults and rules (see scanner/settings),
// so an entry is checked when the file is read; New builds a display from a
// decoded Config.
//
// Drivers: display/vfd (serial pole displays), display/web (a page for the
// kiosk browser), display/term (ANSI terminal), display/logdisplay (zap log).
package display
