//go:build race

package chaostest

// raceEnabled builds kioskd with the race detector when the test has it.
const raceEnabled = true
