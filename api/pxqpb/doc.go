// Package pxqpb is pxq's own public service (pxq.proto: ListScripts,
// ListTables, Execute with Arrow IPC results) with its generated Go code;
// package server implements it, package client calls it.
// Regenerate with `make generate`.
package pxqpb
