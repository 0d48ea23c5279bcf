// Package planner rewrites pxq's logical plans and splits them for
// distributed execution.
//
// Optimize runs a fixed set of rewrite rules, one per file, until none of
// them changes the plan. Every rule preserves results exactly. Plans are
// DAGs: a node reached from several parents is never rewritten in place,
// and rules do not push work through such a node, so that every other
// consumer keeps seeing the rows it saw before.
//
// Split cuts an optimized plan into the fragment that every agent runs
// and the fragment that the broker runs (see Split for the rules).
// Marshal and Unmarshal turn plans into protobuf bytes (api/planpb) and
// back, and Explain renders every stage for `pxq explain`.
package planner
