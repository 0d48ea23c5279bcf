package funcs

import (
	"fmt"
	"strconv"

	"github.com/pxq-dev/pxq/types"
)

// UPIDs, the executing host, and script references.

func init() {
	registerPlaceBound("upid", "a UPID from (asid, pid, start_ts), or (pid, start_ts) on the executing agent",
		sig(tU, fn3(rInt, rInt, rInt, tU, func(asid, pid, ts int64) types.UInt128Value {
			return types.UPID(uint32(asid), uint32(pid), uint64(ts))
		}), tI, tI, tI),
		sig(tU, func(ctx *Context, args []Value, n int) (Value, error) {
			asid := uint32(0)
			if ctx != nil {
				asid = ctx.ASID
			}
			return fn2(rInt, rInt, tU, func(pid, ts int64) types.UInt128Value {
				return types.UPID(asid, uint32(pid), uint64(ts))
			})(ctx, args, n)
		}, tI, tI))
	register("upid_to_pid", "the pid of a UPID", sig(tI, fn1(rU, tI, func(u types.UInt128Value) int64 { return int64(u.PID()) }), tU))
	register("upid_to_asid", "the agent short id of a UPID", sig(tI, fn1(rU, tI, func(u types.UInt128Value) int64 { return int64(u.ASID()) }), tU))
	register("upid_to_start_ts", "the process start time of a UPID", sig(tT, fn1(rU, tT, func(u types.UInt128Value) int64 { return int64(u.StartNS()) }), tU))
	register("upid_to_string", "a UPID as asid:pid:start", sig(tS, fn1(rU, tS, types.UInt128Value.String), tU))
	registerPlaceBound("asid", "the agent short id of the executing agent", sig(tI, fn0(func(c *Context) int64 {
		if c == nil {
			return 0
		}
		return int64(c.ASID)
	})))
	registerPlaceBound("_exec_hostname", "the hostname of the executing agent", sig(tS, fn0(func(c *Context) string {
		if c == nil {
			return ""
		}
		return c.Hostname
	})))
	registerPlaceBound("_exec_host_num_cpus", "the CPU count of the executing agent's host", sig(tI, fn0(func(c *Context) int64 {
		if c == nil {
			return 0
		}
		return int64(c.NumCPU)
	})))
	// pxq has no Vizier: the "cluster" is the deployment the agent is
	// part of. Its id and namespace are empty; its name is the host's.
	registerPlaceBound("vizier_id", "the id of the deployment (empty in pxq)", sig(tS, fn0(func(*Context) string { return "" })))
	registerPlaceBound("vizier_name", "the name of the deployment (the executing host in pxq)", sig(tS, fn0(func(c *Context) string {
		if c == nil {
			return ""
		}
		return c.Hostname
	})))
	registerPlaceBound("vizier_namespace", "the namespace of the deployment (empty in pxq)", sig(tS, fn0(func(*Context) string { return "" })))

	RegisterScalar(&ScalarFunc{Name: "_script_reference", Volatility: Immutable,
		Doc:      "a link to a script as JSON {label, script, args}: (label, script, key1, value1, …)",
		Variadic: scriptReferenceSig,
	})
}

func scriptReferenceSig(args []types.DataType) (Overload, error) {
	if len(args) < 2 || len(args)%2 != 0 {
		return Overload{}, fmt.Errorf("takes a label, a script, then key/value pairs; got %d arguments", len(args))
	}
	for i := 0; i < len(args); i += 2 {
		if args[i] != types.String {
			return Overload{}, fmt.Errorf("argument %d must be a STRING, not %v", i+1, args[i])
		}
	}
	if args[1] != types.String {
		return Overload{}, fmt.Errorf("the script must be a STRING, not %v", args[1])
	}
	return Overload{Args: args, Ret: types.String, RetSem: types.STScriptReference, Kernel: scriptReferenceKernel}, nil
}

func scriptReferenceKernel(ctx *Context, args []Value, n int) (Value, error) {
	row := func(i int) (string, error) {
		b := []byte(`{"label":`)
		b = appendJSONString(b, fmt.Sprint(ValueAt(args[0], i)))
		b = append(b, `,"script":`...)
		b = appendJSONString(b, fmt.Sprint(ValueAt(args[1], i)))
		b = append(b, `,"args":{`...)
		for k := 2; k+1 < len(args); k += 2 {
			if k > 2 {
				b = append(b, ',')
			}
			b = appendJSONString(b, fmt.Sprint(ValueAt(args[k], i)))
			b = append(b, ':')
			b = appendJSONString(b, argText(ValueAt(args[k+1], i)))
		}
		return string(append(b, "}}"...)), nil
	}
	if allConst(args) {
		s, err := row(0)
		return Value{Const: s}, err
	}
	sb := NewStringsBuilder(n, 64)
	for i := 0; i < n; i++ {
		s, err := row(i)
		if err != nil {
			return Value{}, err
		}
		sb.Append(s)
	}
	return Value{Array: sb.Finish()}, nil
}

// argText formats a script argument value as text, as vis variables are.
func argText(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64)
	case bool:
		if x {
			return "true"
		}
		return "false"
	}
	return fmt.Sprint(v)
}

func appendJSONString(b []byte, s string) []byte {
	q := marshalJSON(s)
	return append(b, q...)
}
