// Package scannertest provides fakes for tests of code that consumes
// scanners: Recorder, a scanner.Handler that records what it is given and
// lets a test wait for it, and Fake, a scanner device a test drives by hand
// (scan, unplug, fail to open) behind a real scanner.Opener.
package scannertest
