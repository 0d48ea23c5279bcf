package mdfuncs

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow/go/v15/arrow/array"
	"github.com/apache/arrow/go/v15/arrow/memory"

	"github.com/pxq-dev/pxq/funcs"
	"github.com/pxq-dev/pxq/metadata"
	"github.com/pxq-dev/pxq/types"
)

// upidOf returns the UPID of a running process, read from /proc.
func upidOf(t *testing.T, pid int) types.UInt128Value {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	ticks, err := strconv.ParseUint(f[19], 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return types.UPID(0, uint32(pid), ticks*10_000_000)
}

// waitExec waits until pid runs prog: right after fork, /proc shows the
// parent's command line.
func waitExec(t *testing.T, pid int, prog string) {
	t.Helper()
	for i := 0; i < 200; i++ {
		if b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline"); err == nil && strings.HasPrefix(string(b), prog) {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("pid %d did not exec %s", pid, prog)
}

func upidArray(mem memory.Allocator, us ...types.UInt128Value) *array.FixedSizeBinary {
	b := array.NewFixedSizeBinaryBuilder(mem, types.UInt128Type)
	defer b.Release()
	for _, u := range us {
		b.Append(u.Bytes())
	}
	return b.NewFixedSizeBinaryArray()
}

func call(t *testing.T, ctx *funcs.Context, name string, args ...funcs.Value) funcs.Value {
	t.Helper()
	argTypes := make([]types.DataType, len(args))
	for i, a := range args {
		if a.IsConst() {
			switch a.Const.(type) {
			case string:
				argTypes[i] = types.String
			case int64:
				argTypes[i] = types.Time64NS
			case types.UInt128Value:
				argTypes[i] = types.UInt128
			}
			continue
		}
		dt, err := types.FromArrow(a.Array.DataType())
		if err != nil {
			t.Fatal(err)
		}
		argTypes[i] = dt
	}
	o, err := funcs.Resolve(name, argTypes)
	if err != nil {
		t.Fatal(err)
	}
	n := 1
	for _, a := range args {
		if !a.IsConst() {
			n = a.Array.Len()
		}
	}
	v, err := o.Kernel(ctx, args, n)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return v
}

func strs(t *testing.T, v funcs.Value) []string {
	t.Helper()
	a, ok := v.Array.(*array.String)
	if !ok {
		t.Fatalf("result is %T, want a string column", v.Array)
	}
	out := make([]string, a.Len())
	for i := range out {
		out[i] = a.Value(i)
	}
	return out
}

// TestHostMode runs the process functions against the host provider and a
// real child process; the pod functions name its host entity.
func TestHostMode(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.DefaultAllocator)
	defer mem.AssertSize(t, 0)
	h, err := metadata.NewHost()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("sleep", "123")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	waitExec(t, cmd.Process.Pid, "sleep")
	u := upidOf(t, cmd.Process.Pid)
	unknown := types.UPID(0, 1<<30, 1)
	ctx := &funcs.Context{Mem: mem, Meta: h}
	arr := upidArray(mem, u, u, unknown, u)
	defer arr.Release()

	v := call(t, ctx, "upid_to_cmdline", funcs.Value{Array: arr})
	if got := strs(t, v); strings.Join(got, ",") != "sleep 123,sleep 123,,sleep 123" {
		t.Fatalf("upid_to_cmdline = %q", got)
	}
	v.Array.Release()
	host, _ := os.Hostname()
	v = call(t, ctx, "upid_to_hostname", funcs.Value{Array: arr})
	if got := strs(t, v); got[0] != host || got[2] != "" {
		t.Fatalf("upid_to_hostname = %q", got)
	}
	v.Array.Release()
	// The process belongs to a host entity, which plays its pod (see
	// metadata.EntityOf; the names are checked in package metadata).
	e, ok := metadata.EntityOf(h.Process(u))
	if !ok {
		t.Fatal("the child has no host entity")
	}
	svc := ""
	if e.Service != "" {
		svc = e.Namespace + "/" + e.Service
	}
	for fn, want := range map[string]string{"upid_to_pod_name": e.QualifiedName(), "upid_to_namespace": e.Namespace,
		"upid_to_service_name": svc, "upid_to_node_name": host} {
		v = call(t, ctx, fn, funcs.Value{Array: arr})
		if got := strs(t, v); strings.Join(got, ",") != strings.Join([]string{want, want, "", want}, ",") {
			t.Errorf("%s = %q in host mode, want %q", fn, got, want)
		}
		v.Array.Release()
	}
	if v := call(t, ctx, "upid_to_cmdline", funcs.Value{Const: u}); v.Const != "sleep 123" {
		t.Fatalf("constant upid_to_cmdline = %v", v.Const)
	}
	if v := call(t, ctx, "ip_to_pod_id", funcs.Value{Const: "192.0.2.3"}); v.Const != "" {
		t.Fatalf("ip_to_pod_id of a remote address in host mode = %v", v.Const)
	}
	// A local address belongs to the host itself.
	id := call(t, ctx, "ip_to_pod_id", funcs.Value{Const: "127.0.0.1"})
	if v := call(t, ctx, "pod_id_to_pod_name", id); v.Const != "host/"+host {
		t.Fatalf("pod of 127.0.0.1 in host mode = %v", v.Const)
	}
}

func TestRegistered(t *testing.T) {
	want := map[string]types.SemanticType{
		"upid_to_pod_name":       types.STPodName,
		"upid_to_service_name":   types.STServiceName,
		"upid_to_namespace":      types.STNamespaceName,
		"upid_to_node_name":      types.STNodeName,
		"upid_to_container_name": types.STContainerName,
		"pod_id_to_pod_name":     types.STPodName,
		"pod_name_to_status":     types.STPodStatus,
		"pod_name_to_start_time": types.STTimeNS,
	}
	for name, sem := range want {
		f := funcs.Scalar(name)
		if f == nil {
			t.Fatalf("%s not registered", name)
		}
		if f.Overloads[0].RetSem != sem {
			t.Errorf("%s returns %v, want %v", name, f.Overloads[0].RetSem, sem)
		}
	}
	if len(Names()) < 80 {
		t.Errorf("only %d functions registered", len(Names()))
	}
	seen := map[string]bool{}
	for _, n := range Names() {
		if seen[n] {
			t.Errorf("%s registered twice", n)
		}
		seen[n] = true
	}
	if _, err := funcs.Resolve("ip_to_pod_id", []types.DataType{types.String, types.Time64NS}); err != nil {
		t.Error(err)
	}
	// Every ctx key names a registered function (upid_to_pid is funcs
	// core's).
	for _, col := range []string{"upid", "pod_id"} {
		for _, k := range CtxKeys(col) {
			fn, ok := CtxKey(k, col)
			if !ok || (fn != "" && fn != "upid_to_pid" && funcs.Scalar(fn) == nil) {
				t.Errorf("CtxKey(%q, %q) = %q, %v", k, col, fn, ok)
			}
		}
	}
	if fn, ok := CtxKey("pod", "upid"); fn != "upid_to_pod_name" || !ok {
		t.Errorf("CtxKey(pod, upid) = %q %v", fn, ok)
	}
	if _, ok := CtxKey("cmdline", "pod_id"); ok {
		t.Error("ctx['cmdline'] of a pod_id table should not resolve")
	}
}

// TestCtxKeysDocumented: docs/language.md lists every df.ctx key.
func TestCtxKeysDocumented(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "language.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range CtxKeys("") {
		if !strings.Contains(string(doc), "`"+k+"`") {
			t.Errorf("docs/language.md does not list ctx key %q", k)
		}
	}
}
