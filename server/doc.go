// Package server is pxq's public API: the Pixie-compatible
// px.api.vizierpb.VizierService (ExecuteScript, HealthCheck,
// GenerateOTelScript) and pxq's own pxq.api.v1.PxqService (scripts,
// tables, Arrow results). Both run scripts through a query.Runner over
// its backend: the embedded engine (`pxq serve`) or a broker (package
// broker). They map its results and errors to their wire forms: a
// script's mistake (*lang.Error) to an in-stream compiler error, a busy
// server to RESOURCE_EXHAUSTED, a server shutting down to UNAVAILABLE.
package server
