package tls

import (
	"bytes"
	"os"
	"slices"
	"strings"
	"testing"
)

// code lays out functions at fixed offsets of a zero-filled image.
type code map[uint64][]byte

func (c code) reader() *bytes.Reader {
	img := make([]byte, 0x400)
	for off, b := range c {
		copy(img[off:], b)
	}
	return bytes.NewReader(img)
}

// call returns a call rel32 at offset at to target.
func call(at, target uint64) []byte {
	rel := int32(int64(target) - int64(at+5))
	return []byte{0xe8, byte(rel), byte(rel >> 8), byte(rel >> 16), byte(rel >> 24)}
}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

var (
	subRSP18 = []byte{0x48, 0x83, 0xec, 0x18} // sub $0x18,%rsp
	subRSP8  = []byte{0x48, 0x83, 0xec, 0x08} // sub $0x8,%rsp
	movRDIRB = []byte{0x48, 0x89, 0xfb}       // mov %rdi,%rbx
	testEDX  = []byte{0x85, 0xd2}             // test %edx,%edx
	movRCX   = []byte{0x48, 0x89, 0xe1}       // mov %rsp,%rcx
	pushR14  = []byte{0x41, 0x56}             // push %r14
	pushRBX  = []byte{0x53}                   // push %rbx
	endbr64  = []byte{0xf3, 0x0f, 0x1e, 0xfa}
	ret      = []byte{0xc3}
)

// The wrappers of Debian's OpenSSL 3.0 (SSL_write: sub, test, mov, call;
// SSL_write_ex: sub, call) and others that must keep their own probes.
func TestPlacement(t *testing.T) {
	const w, x, internal, other, hs = 0x100, 0x180, 0x200, 0x280, 0x300
	wrapper := cat(subRSP18, testEDX, movRCX, call(w+9, internal), ret)
	ex := cat(subRSP8, call(x+4, internal), ret)
	funcs := map[string]uint64{FuncWrite: w, FuncWriteEx: x, FuncHandshake: hs}
	for _, tc := range []struct {
		name string
		c    code
		want []Probe // Offset, Kind and Funcs
	}{{
		name: "shared internal function",
		c:    code{w: wrapper, x: ex, internal: pushR14, hs: pushRBX},
		want: []Probe{{Offset: internal, Kind: FuncWriteEx, Funcs: []string{FuncWrite, FuncWriteEx}}, {Offset: hs, Kind: FuncHandshake}},
	}, {
		name: "internal function with endbr64 (a CET build)",
		c: code{
			w:        cat(endbr64, subRSP18, testEDX, movRCX, call(w+13, internal), ret),
			x:        cat(endbr64, subRSP8, call(x+8, internal), ret),
			internal: cat(endbr64, pushR14), hs: pushRBX,
		},
		want: []Probe{{Offset: internal + 4, Kind: FuncWriteEx, Funcs: []string{FuncWrite, FuncWriteEx}}, {Offset: hs, Kind: FuncHandshake}},
	}, {
		name: "internal function not emulated",
		c:    code{w: wrapper, x: ex, internal: subRSP8, hs: pushRBX},
		want: []Probe{{Offset: w, Kind: FuncWrite}, {Offset: x, Kind: FuncWriteEx}, {Offset: hs, Kind: FuncHandshake}},
	}, {
		name: "different callees",
		c:    code{w: cat(subRSP18, call(w+4, other), ret), x: ex, internal: pushR14, other: pushR14, hs: pushRBX},
		want: []Probe{{Offset: w, Kind: FuncWrite}, {Offset: x, Kind: FuncWriteEx}, {Offset: hs, Kind: FuncHandshake}},
	}, {
		name: "_ex changes an argument register before its call",
		c:    code{w: wrapper, x: cat(subRSP8, movRDIRB, call(x+7, internal), ret), internal: pushR14, hs: pushRBX},
		want: []Probe{{Offset: w, Kind: FuncWrite}, {Offset: x, Kind: FuncWriteEx}, {Offset: hs, Kind: FuncHandshake}},
	}, {
		name: "SSL_write calls SSL_write_ex", // testdata/fakessl.c
		c:    code{w: cat(subRSP18, call(w+4, x), ret), x: cat(pushRBX, call(x+1, other), ret), other: pushR14, hs: pushRBX},
		want: []Probe{{Offset: w, Kind: FuncWrite}, {Offset: x, Kind: FuncWriteEx}, {Offset: hs, Kind: FuncHandshake}},
	}, {
		name: "endbr64 stepped over before an emulated instruction",
		c:    code{w: wrapper, x: ex, internal: pushR14, hs: cat(endbr64, pushRBX)},
		want: []Probe{{Offset: internal, Kind: FuncWriteEx, Funcs: []string{FuncWrite, FuncWriteEx}}, {Offset: hs + 4, Kind: FuncHandshake}},
	}, {
		name: "endbr64 kept before a single-stepped instruction",
		c:    code{w: wrapper, x: ex, internal: pushR14, hs: cat(endbr64, subRSP8)},
		want: []Probe{{Offset: internal, Kind: FuncWriteEx, Funcs: []string{FuncWrite, FuncWriteEx}}, {Offset: hs, Kind: FuncHandshake}},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			got := placement(tc.c.reader(), funcs, true)
			if len(got) != len(tc.want) {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
			for i, g := range got {
				want := tc.want[i]
				if want.Funcs == nil {
					want.Funcs = []string{want.Kind}
				}
				if g.Offset != want.Offset || g.Kind != want.Kind || !slices.Equal(g.Funcs, want.Funcs) {
					t.Errorf("probe %d: got %+v, want %+v", i, g, want)
				}
			}
		})
	}
	// On another machine the probes stay at the symbols.
	c := code{w: wrapper, x: ex, internal: pushR14, hs: cat(endbr64, pushRBX)}
	got := placement(c.reader(), funcs, false)
	if len(got) != 3 || got[0].Offset != w || got[1].Offset != x || got[2].Offset != hs {
		t.Errorf("not amd64: %+v", got)
	}
}

// The host's libssl (Debian 12's OpenSSL 3.0 here) gets no probe on a
// single-stepped instruction: its wrappers' shared callees are probed.
func TestPlacementLibssl(t *testing.T) {
	path := hostLibssl(t)
	probes := placementOf(t, path)
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range probes {
		t.Logf("%s: %#x %s", strings.Join(p.Funcs, "+"), p.Offset, p.Where)
		b := make([]byte, 16)
		f.ReadAt(b, int64(p.Offset))
		if first, ok := emulated(b); !ok {
			t.Errorf("%v probed at %#x, whose first instruction the kernel single-steps (% x)", p.Funcs, p.Offset, b[:4])
		} else if p.Kind == FuncWriteEx || p.Kind == FuncReadEx {
			if len(p.Funcs) != 2 {
				t.Errorf("%v: %s, want the wrappers' shared callee", p.Funcs, first)
			}
		}
	}
	if len(probes) != 3 {
		t.Errorf("%d probes, want 3 (write, read, handshake)", len(probes))
	}
}

// placementOf returns where the probes of the file at path go.
func placementOf(t *testing.T, path string) []Probe {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	funcs, err := Symbols(f)
	if err != nil {
		t.Fatal(err)
	}
	return Placement(f, funcs)
}
