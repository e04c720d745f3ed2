// Package simadmin holds what the simulators' plain-HTTP admin APIs (the
// Smart Pay simulator's and the fiscal simulators') read the same way: a
// posted JSON body, strictly, and the durations in it ("2s", "25h").
package simadmin
