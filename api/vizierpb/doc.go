// Package vizierpb is the Pixie-compatible public script service
// (px.api.vizierpb.VizierService, vizierapi.proto) with its generated Go
// code. Field names and numbers follow Pixie's client protocol exactly;
// package server implements it.
// Regenerate with `make generate`.
package vizierpb
