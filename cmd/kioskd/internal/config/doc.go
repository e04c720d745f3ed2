// Package config reads devices.yaml, the one file a field engineer edits to
// describe a kiosk: the kassa, the Smart Pay service and its certificates, the
// local control API, the scanners and displays, logging and timeouts.
//
// The file is parsed into a syntax tree, not decoded into structs, so that
// every problem names its line and field and all problems are found in one
// run rather than one per edit-and-retry cycle. This package declares only
// the agent's own keys (schema.go); each scanner and display entry is read
// by its driver's registered settings (see scanner/settings), which declare
// that driver's keys, defaults and rules next to its code. drivers.go lists
// the drivers linked in. Parse and Load only read the file: nothing is
// opened, dialled or probed here, so a bad file is rejected before any
// device is touched. Diagnostics that need I/O (certificates, the service,
// the devices) live in package check.
package config
