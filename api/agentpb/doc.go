// Package agentpb is the service a pxq broker calls on every agent
// (agent.proto: Info, Execute) with its generated Go code; package agent
// implements it, package broker calls it.
// Regenerate with `make generate`.
package agentpb
