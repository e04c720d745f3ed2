package config

import (
	"os"
	"testing"
)

// BenchmarkParseExample measures parsing and validating the full example
// devices.yaml, a part of the agent's start-to-ready time.
func BenchmarkParseExample(b *testing.B) {
	data, err := os.ReadFile("../../../../devices.yaml")
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse("devices.yaml", data); err != nil {
			b.Fatal(err)
		}
	}
}
