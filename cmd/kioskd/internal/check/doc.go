// Package check is the diagnosis behind `kioskd check -config F`: it takes a
// validated devices.yaml and tries everything the agent will need, once,
// without starting the agent. It reads the certificates (chain, key match,
// key permissions, days to expiry), asks the service for a ping and a
// session, opens each scanner and display device once and closes it again,
// and returns one Problem per thing a field engineer has to fix.
//
// Run never stops at the first problem: an installer fixing a kiosk wants
// the whole list in one go.
package check
