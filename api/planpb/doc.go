// Package planpb is the protobuf form of pxq's query plans (plan.proto),
// with its generated Go code. Regenerate it with `make generate`; package
// planner converts between these messages and package plan.
package planpb
