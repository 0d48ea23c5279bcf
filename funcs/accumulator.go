package funcs

// Accumulator holds the state of one aggregate for many groups at once,
// so that a hash aggregate updates a whole batch per call. Its life is the
// four steps of every pxq aggregate: init (New + Resize), update, merge,
// finalize; the partial state of a group serializes so that agents can
// aggregate locally and the broker merges.
//
// Update reads its arguments as the executor evaluated them: arrays of n
// rows or constants. A new group (made by Resize) starts empty: count 0,
// sum 0, min/max/any unset (finalizing an empty group yields the zero
// value of the result type), so that an aggregate over no rows still
// finalizes. State of a group followed by MergeState into an empty group
// reproduces it; merging states in any order and grouping gives the
// result of one pass over all rows (exactly for sum, count, mean up to
// float rounding, min, max; within the stated error bound for quantiles;
// some value of the group for any and sample).
type Accumulator interface {
	// Resize makes room for n groups (n only grows).
	Resize(n int)
	// Update folds n rows into their groups: groups[i] is row i's group.
	Update(ctx *Context, args []Value, groups []uint32, n int) error
	// State serializes group g's partial state.
	State(g int) []byte
	// MergeState merges a serialized partial state into group g.
	MergeState(g int, state []byte) error
	// Finalize returns the final values of groups [0, n) as one array of
	// the aggregate's result type.
	Finalize(ctx *Context, n int) (Value, error)
	// Bytes estimates the memory the accumulator holds, for the
	// executor's per-query memory bound.
	Bytes() int64
}
