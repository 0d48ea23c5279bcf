package bpf

import (
	"testing"

	"github.com/cilium/ebpf/btf"
)

// The GoTLS objects include trace.c: the maps they share with the
// tracer's (replaced at load) and the event layout must be the same in
// both. A difference means one object was regenerated without the other.
func TestGoTLSMatchesTrace(t *testing.T) {
	tr, err := LoadTrace()
	if err != nil {
		t.Fatal(err)
	}
	gt, err := LoadGoTLS()
	if err != nil {
		t.Fatal(err)
	}
	for name, ms := range tr.Maps {
		if name[0] == '.' {
			continue // globals: each object has its own
		}
		gs, ok := gt.Maps[name]
		if !ok {
			t.Errorf("map %s is not in the GoTLS object", name)
			continue
		}
		if ms.Type != gs.Type || ms.KeySize != gs.KeySize || ms.ValueSize != gs.ValueSize || ms.MaxEntries != gs.MaxEntries {
			t.Errorf("map %s: trace %v/%d/%d/%d, GoTLS %v/%d/%d/%d — regenerate both (go generate)", name,
				ms.Type, ms.KeySize, ms.ValueSize, ms.MaxEntries, gs.Type, gs.KeySize, gs.ValueSize, gs.MaxEntries)
		}
	}
	for _, typ := range []string{"event", "conn", "scratch"} {
		var a, b *btf.Struct
		if err := tr.Types.TypeByName(typ, &a); err != nil {
			t.Fatal(err)
		}
		if err := gt.Types.TypeByName(typ, &b); err != nil {
			t.Fatal(err)
		}
		if a.Size != b.Size || len(a.Members) != len(b.Members) {
			t.Errorf("struct %s: trace %d bytes, %d fields; GoTLS %d bytes, %d fields", typ, a.Size, len(a.Members), b.Size, len(b.Members))
		}
	}
}
