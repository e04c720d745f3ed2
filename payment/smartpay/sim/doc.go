// Package sim is a Smart Pay kassa API server for development, demos and tests:
// the service side of the contract in package smartpay (whose wire types it
// uses), with mTLS, expiring session cookies, real QR crypto (RSA-OAEP-SHA256
// decryption, ECDSA-SHA256 signatures), single-use OTPs, the purchase and
// refund rules, scripted outcomes by amount and fault injection.
//
// Scripted outcomes: a release whose amount ends in 51 kopecks fails, one
// ending in 52 stays processing until the kassa cancels it; any other amount
// succeeds after Config.SuccessDelay.
//
// The key material lives in a directory (see KeyFiles); New creates it on the
// first start and reuses it later, and GenerateQR plays the mobile app with it.
package sim
