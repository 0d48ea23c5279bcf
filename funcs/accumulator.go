package funcs

// Accumulator holds the state of one aggregate for many groups at once,
// so that a hash aggregate updates a whole batch per call. Its life is the
// four steps of every pxq aggregate: init (New + Resize), update, merge,
// finalize; the partial state of a group serializes so that agents can
// aggregate locally and the broker merges.
//
// The executor package owns the details of this interface.
type Accumulator interface {
	// Resize makes room for n groups (n only grows).
	Resize(n int)
	// Update folds n rows into their groups: groups[i] is row i's group.
	Update(ctx *Context, args []Value, groups []uint32, n int) error
	// State serializes group g's partial state.
	State(g int) []byte
	// MergeState merges a serialized partial state into group g.
	MergeState(g int, state []byte) error
	// Finalize appends the final value of groups [0, n) to an Arrow
	// builder of the aggregate's result type.
	Finalize(ctx *Context, n int) (Value, error)
}
