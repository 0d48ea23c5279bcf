package funcs

import (
	"fmt"
	"math"
	"math/rand"
	"reflect"
	"testing"

	"github.com/pxq-dev/pxq/types"
)

// required lists every scalar function the executor must provide (the
// metadata-free, parser-free part of PxL's registry).
var required = []string{
	"add", "subtract", "multiply", "divide", "modulo", "equal", "notEqual", "approxEqual", "lessThan",
	"lessThanEqual", "greaterThan", "greaterThanEqual", "logicalAnd", "logicalOr", "logicalNot", "negate",
	"invert", "log", "ln", "log2", "log10", "pow", "exp", "abs", "sqrt", "ceil", "floor", "round",
	"contains", "length", "find", "substring", "tolower", "toupper", "trim", "strip_prefix", "hex_to_ascii",
	"bytes_to_hex", "atoi", "itoa", "regex_match", "replace", "split", "redact_pii_best_effort", "uri_parse",
	"uri_recompose", "pluck", "pluck_int64", "pluck_float64", "pluck_array", "has_value", "has_service_name",
	"has_service_id", "select", "bin", "time_to_int64", "int64_to_time", "protocol_name", "http_resp_message",
	"dns_rcode_name", "grpc_status_code_to_str", "kafka_api_key_name", "mysql_command_name", "cql_opcode_name",
	"amqp_frame_type_name", "amqp_method_name", "mux_frame_type_name", "upid", "upid_to_pid", "upid_to_asid",
	"upid_to_start_ts", "upid_to_string", "asid", "_exec_hostname", "_exec_host_num_cpus", "vizier_id",
	"vizier_name", "vizier_namespace", "nslookup", "cidrs_contain_ip", "get_cidrs", "normalize_pgsql",
	"normalize_mysql", "_script_reference",
}

func TestRegistered(t *testing.T) {
	for _, n := range required {
		if Scalar(n) == nil {
			t.Errorf("scalar %s is not registered", n)
		}
	}
	for _, n := range []string{"sum", "mean", "count", "max", "min", "any", "quantiles", "sample"} {
		if Agg(n) == nil {
			t.Errorf("aggregate %s is not registered", n)
		}
	}
	checks := []struct {
		name string
		args []types.DataType
		ret  types.DataType
	}{
		{"divide", []types.DataType{tI, tI}, tF},
		{"floor", []types.DataType{tF}, tI},
		{"ceil", []types.DataType{tF}, tI},
		{"bin", []types.DataType{tI, tI}, tI},
		{"bin", []types.DataType{tT, tI}, tT},
		{"add", []types.DataType{tS, tS}, tS},
		{"add", []types.DataType{tT, tI}, tT},
		{"subtract", []types.DataType{tT, tT}, tI},
		{"lessThan", []types.DataType{tS, tS}, tB},
		{"equal", []types.DataType{tU, tU}, tB},
		{"select", []types.DataType{tB, tS, tS}, tS},
		{"_script_reference", []types.DataType{tS, tS, tS, tS}, tS},
	}
	for _, c := range checks {
		o, err := Resolve(c.name, c.args)
		if err != nil {
			t.Errorf("%s%v: %v", c.name, c.args, err)
			continue
		}
		if o.Ret != c.ret {
			t.Errorf("%s%v returns %v, want %v", c.name, c.args, o.Ret, c.ret)
		}
	}
	o, err := ResolveAgg("quantiles", []types.DataType{tI})
	if err != nil || o.RetSem != types.STQuantiles || o.Ret != tS {
		t.Errorf("quantiles(INT64) = %+v, %v", o, err)
	}
}

// randomValue returns a random constant of type t, drawn from a small
// domain so that comparisons and lookups hit.
func randomValue(r *rand.Rand, t types.DataType) any {
	switch t {
	case types.Boolean:
		return r.Intn(2) == 1
	case types.Int64, types.Time64NS:
		return int64(r.Intn(41) - 20)
	case types.Float64:
		return float64(r.Intn(81)-40) / 4
	case types.String:
		return []string{"", "a", "ab", "abc", "b", "Hello World", "  x ", "10", "-3", "7f", `{"a":1,"b":"x"}`, `["x","y"]`, "ab,c", "10.0.0.1", "a.b"}[r.Intn(15)]
	case types.UInt128:
		return types.UPID(uint32(r.Intn(3)), uint32(r.Intn(3)), uint64(r.Intn(3)))
	}
	panic(t)
}

// TestVectorMatchesScalar checks, for every overload of every scalar
// function, that evaluating a batch of arrays (and of arrays mixed with
// constants) gives row for row what evaluating constants gives.
func TestVectorMatchesScalar(t *testing.T) {
	r := rand.New(rand.NewSource(1))
	skip := map[string]bool{"nslookup": true}
	ctx := &Context{Hostname: "h", NumCPU: 2, ASID: 7}
	const n = 37
	for _, name := range ScalarNames() {
		f := Scalar(name)
		if skip[name] || f.Variadic != nil {
			continue
		}
		for _, o := range f.Overloads {
			for trial := 0; trial < 4; trial++ {
				rows := make([][]any, n)
				for i := range rows {
					rows[i] = make([]any, len(o.Args))
					for k, at := range o.Args {
						rows[i][k] = randomValue(r, at)
					}
				}
				args := make([]Value, len(o.Args))
				for k, at := range o.Args {
					constArg := k < o.InitArgs || (trial%2 == 1 && r.Intn(2) == 0)
					if constArg {
						for i := range rows {
							rows[i][k] = rows[0][k]
						}
						args[k] = Value{Const: rows[0][k]}
						continue
					}
					b := make([]any, n)
					for i := range rows {
						b[i] = rows[i][k]
					}
					args[k] = Value{Array: arrayOf(t, at, b)}
				}
				got, err := o.Kernel(ctx, args, n)
				if err != nil {
					t.Fatalf("%s%v: %v", name, o.Args, err)
				}
				if got.IsConst() && !allConst(args) && len(o.Args) > 0 && name != "select" && name != "logicalAnd" && name != "logicalOr" {
					t.Errorf("%s%v: constant result for array arguments", name, o.Args)
				}
				for i := 0; i < n; i++ {
					cargs := make([]Value, len(o.Args))
					for k := range cargs {
						cargs[k] = Value{Const: rows[i][k]}
					}
					want, err := o.Kernel(ctx, cargs, 1)
					if err != nil {
						t.Fatalf("%s%v const: %v", name, o.Args, err)
					}
					if !want.IsConst() {
						t.Fatalf("%s%v: constant arguments gave an array", name, o.Args)
					}
					gv := ValueAt(got, i)
					if got.IsConst() {
						gv = normalizeConst(gv, o.Ret)
					}
					if !sameValue(gv, normalizeConst(want.Const, o.Ret)) {
						t.Fatalf("%s%v row %d %v: vector %v (%T), scalar %v (%T)", name, o.Args, i, rows[i], gv, gv, want.Const, want.Const)
					}
				}
			}
		}
	}
}

func normalizeConst(v any, t types.DataType) any {
	if t == types.Float64 {
		f, _ := ConstFloat(v)
		return f
	}
	return v
}

func sameValue(a, b any) bool {
	fa, ok1 := a.(float64)
	fb, ok2 := b.(float64)
	if ok1 && ok2 {
		return fa == fb || (math.IsNaN(fa) && math.IsNaN(fb))
	}
	return reflect.DeepEqual(a, b)
}

func arrayOf(t *testing.T, typ types.DataType, vals []any) ArrayT {
	a, err := buildArray(typ, vals)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestKernelsOnExamples(t *testing.T) {
	ctx := &Context{Hostname: "host1", NumCPU: 4, ASID: 3}
	call := func(name string, args ...any) any {
		ts := make([]types.DataType, len(args))
		vs := make([]Value, len(args))
		for i, a := range args {
			switch a.(type) {
			case bool:
				ts[i] = tB
			case int64:
				ts[i] = tI
			case float64:
				ts[i] = tF
			case string:
				ts[i] = tS
			case types.UInt128Value:
				ts[i] = tU
			}
			vs[i] = Value{Const: a}
		}
		o, err := Resolve(name, ts)
		if err != nil {
			t.Fatal(err)
		}
		v, err := o.Kernel(ctx, vs, 1)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return v.Const
	}
	q := `{"p01":1,"p10":2.5,"p50":"7","s":"a\"b","o":{"x":[1,2]}}`
	cases := []struct {
		got, want any
	}{
		{call("divide", int64(7), int64(2)), 3.5},
		{call("floor", 2.7), int64(2)},
		{call("ceil", 2.1), int64(3)},
		{call("bin", int64(17), int64(5)), int64(15)},
		{call("bin", int64(-3), int64(5)), int64(-5)},
		{call("modulo", int64(7), int64(0)), int64(0)},
		{call("add", "a", "b"), "ab"},
		{call("contains", "hello", "ell"), true},
		{call("find", "hello", "l"), int64(2)},
		{call("substring", "hello", int64(1), int64(3)), "ell"},
		{call("substring", "hello", int64(3), int64(10)), "lo"},
		{call("substring", "hello", int64(6), int64(1)), ""},
		{call("atoi", "12", int64(-1)), int64(12)},
		{call("atoi", "x", int64(-1)), int64(-1)},
		{call("regex_match", "a.c", "abc"), true},
		{call("regex_match", "a.c", "abcd"), false},
		{call("replace", `(\w+)@(\w+)`, "joe@host x", `\2:\1$`), "host:joe$ x"},
		{call("split", "a,b", ","), `["a","b"]`},
		{call("pluck_float64", q, "p10"), 2.5},
		{call("pluck_float64", q, "p50"), 7.0},
		{call("pluck_int64", q, "p01"), int64(1)},
		{call("pluck", q, "s"), `a"b`},
		{call("pluck", q, "o"), `{"x":[1,2]}`},
		{call("pluck", q, "missing"), ""},
		{call("pluck_array", `["x",{"a":1},3]`, int64(1)), `{"a":1}`},
		{call("pluck_array", `["x",{"a":1},3]`, int64(0)), `x`},
		{call("has_service_name", `["ns/a","ns/b"]`, "ns/b"), true},
		{call("has_service_name", "ns/a", "ns/a"), true},
		{call("cidrs_contain_ip", `["10.0.0.0/8"]`, "10.1.2.3"), true},
		{call("cidrs_contain_ip", `["10.0.0.0/8"]`, "11.1.2.3"), false},
		{call("tolower", "AbC"), "abc"},
		{call("trim", " \tx \n"), "x"},
		{call("strip_prefix", "ab", "abc"), "c"},
		{call("bytes_to_hex", "AB"), "4142"},
		{call("hex_to_ascii", "4142"), "AB"},
		{call("round", 3.14159, int64(2)), "3.14"},
		{call("protocol_name", int64(1)), "HTTP"},
		{call("http_resp_message", int64(404)), "Not Found"},
		{call("amqp_method_name", int64(60), int64(40)), "BasicPublish"},
		{call("upid_to_pid", types.UPID(1, 42, 9)), int64(42)},
		{call("upid_to_asid", types.UPID(1, 42, 9)), int64(1)},
		{call("upid_to_string", types.UPID(1, 42, 9)), "1:42:9"},
		{call("upid", int64(42), int64(9)), types.UPID(3, 42, 9)},
		{call("_exec_hostname"), "host1"},
		{call("_exec_host_num_cpus"), int64(4)},
		{call("approxEqual", 0.1+0.2, 0.3), true},
		{call("logicalAnd", true, false), false},
		{call("lessThan", "a", "b"), true},
		{call("select", true, "x", "y"), "x"},
		{call("uri_parse", "http://u@h:8080/p?q=1#f"), `{"scheme":"http","userinfo":"u","host":"h","port":8080,"path":"/p","query":"q=1","fragment":"f"}`},
		{call("normalize_pgsql", "SELECT * FROM t1 WHERE a = 'x''y' AND b > -3.5", ""), `{"query":"SELECT * FROM t1 WHERE a = $1 AND b > $2","params":["x'y","-3.5"],"error":""}`},
		{call("normalize_mysql", "select x from t where id in (1, 2) and n = \"a\"", int64(3)), `{"query":"select x from t where id in (?, ?) and n = ?","params":["1","2","a"],"error":""}`},
		{call("redact_pii_best_effort", "mail joe@x.com from 10.0.0.1 card 4111 1111 1111 1111"), "mail <REDACTED_EMAIL> from <REDACTED_IPV4> card <REDACTED_CC_NUMBER>"},
		{call("_script_reference", "lbl", "px/pod", "pod", "ns/p", "n", int64(3)), `{"label":"lbl","script":"px/pod","args":{"pod":"ns/p","n":"3"}}`},
	}
	for i, c := range cases {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("case %d: got %v (%T), want %v (%T)", i, c.got, c.got, c.want, c.want)
		}
	}
	_ = fmt.Sprint
}
