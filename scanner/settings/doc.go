// Package settings lets each driver declare its own devices.yaml keys —
// their types, allowed values, defaults and the rules between them — next
// to its code, the way periph's drivers own their options; a configuration
// loader walks the file and asks the drivers, and this package turns every
// problem into a line number, a dotted path and a message with the fix.
//
// The pieces:
//
//   - Node is a parsed value with its line, independent of the file format
//     (cmd/kioskd/internal/config builds it from YAML);
//   - Field binds one key to a Go variable (String, Enum, Int, Duration,
//     Hex16, HostPort, Sub, Many…); a settings type declares its keys by
//     implementing Schema (Fields) and, for rules that span keys, Checker;
//   - Registry is one kind of driver (scanner, display, vending, fiscal):
//     drivers register a default settings value under a name, and Decode
//     reads an entry's driver key, name and the driver's own keys into an
//     Entry whose Settings the driver later opens;
//   - USB, Port and Resource describe what an entry opens, for the checks
//     between entries, `kioskd udev-rules` and `kioskd check`.
//
// A Decoder collects every problem instead of stopping at the first, so a
// field engineer fixes a file in one round.
//
// Why here: Go code of this module lives under cmd/, scanner/, display/ and
// payment/ only. Drivers cannot import cmd/kioskd/internal, and payment sits
// above the devices, so the shared schema lives with the lowest layer:
// scanner imports nothing of kioskd, and this package imports nothing at
// all beyond the standard library, so scanner, display and payment (vending,
// fiscal) drivers can all use it without turning the layering upside down.
package settings
