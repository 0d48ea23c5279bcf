package ebpf

// NumHooks returns how many programs the tracer attaches, for the tests
// of package ebpf_test.
func NumHooks(t *Tracer) int { return len(t.tracepoints()) }
