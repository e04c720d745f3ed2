// Package web shows the customer display as a page for the kiosk's own
// browser (Chromium in kiosk mode): one page with large text, the amount and
// a green or red screen for success or failure, served on a loopback address
// and updated live over Server-Sent Events. Everything the page needs is
// embedded in the binary, so it works offline; the current screen is sent as
// soon as a browser connects, and the browser's EventSource reconnects by
// itself after a restart of the agent.
package web
