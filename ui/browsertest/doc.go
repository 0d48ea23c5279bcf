// Package browsertest tests pxq's web UI in a real browser: Chromium,
// driven by chromedp, against the UI handler on loopback over an embedded
// engine filled with traffic traced by eBPF (or, without root, a shipped
// capture and generated rows). It is a module of its own so that chromedp
// stays out of pxq's go.mod; run it with `make test-ui`.
package browsertest
