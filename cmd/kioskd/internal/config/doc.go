// Package config reads devices.yaml, the one file a field engineer edits to
// describe a kiosk: the kassa, the Smart Pay service and its certificates, the
// local control API, the scanners and displays, logging and timeouts.
//
// Parsing walks the YAML syntax tree instead of decoding into structs so that
// every problem names its line and field, and so that all problems are found
// in one run rather than one per edit-and-retry cycle. Parse and Load only
// read the file: nothing is opened, dialled or probed here, so a bad file is
// rejected before any device is touched. Diagnostics that need I/O
// (certificates, the service, the devices) live in package check.
package config
