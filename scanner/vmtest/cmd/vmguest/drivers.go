//go:build linux

package main

// driverScenarios are the scenarios that read through the scanner drivers.
func driverScenarios() []scenario { return nil }
