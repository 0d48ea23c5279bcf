// Package server is pxq's public API: the Pixie-compatible
// px.api.vizierpb.VizierService (ExecuteScript, HealthCheck,
// GenerateOTelScript), pxq's own pxq.api.v1.PxqService (scripts, tables,
// Arrow results) and an HTTP handler that streams results as Arrow IPC
// for browsers. It compiles scripts and hands plans to a Backend: the
// embedded engine (Local, for `pxq serve`) or a broker (package broker).
package server

import "sort"

func sortStrings(s []string) { sort.Strings(s) }
