// Package simtest starts the Smart Pay simulator for tests the way
// net/http/httptest starts a server: NewServer serves a simulator over real
// mTLS on a loopback port until the test ends, and its NewClient returns a
// started smartpay.Client for it, closed when the test ends.
//
//	srv := simtest.NewServer(t, sim.Config{SuccessDelay: 50 * time.Millisecond})
//	c := srv.NewClient(t)
//	r, err := c.Commit(ctx, smartpay.CommitRequest{KassaPurchaseID: "1", QR: srv.QRCode(t, sim.QRParams{UserID: "u1"})})
//
// The key material (CA, server and kassa certificates, the service's and the
// app's keys) is generated once per test binary and copied into each
// server's own directory, so a test pays for RSA key generation once.
package simtest
