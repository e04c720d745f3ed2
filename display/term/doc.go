// Package term shows the customer display in a terminal, for the demo and
// for bench setups without a pole display: on a terminal it draws a coloured
// box and redraws it in place; on anything else (a pipe, a file, a CI log) it
// writes one plain line per screen.
package term
