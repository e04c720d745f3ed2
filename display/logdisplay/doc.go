// Package logdisplay is a customer display that writes each screen to the
// agent's log, so an operator reading the log sees what the customer saw
// and when.
package logdisplay
