// Package displaytest holds what the display drivers' tests share: golden
// files of the bytes a driver writes (go test -update rewrites them) and a
// writer that counts those bytes for the benchmarks.
package displaytest
