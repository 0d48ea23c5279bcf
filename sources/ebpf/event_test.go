package ebpf

import (
	"testing"
	"unsafe"

	"github.com/pxq-dev/pxq/sources/ebpf/bpf"
)

func TestEventLayout(t *testing.T) {
	var ev bpf.TraceEvent
	if s := unsafe.Sizeof(ev); s != eventHeaderSize {
		t.Fatalf("struct event is %d bytes, decoder expects %d", s, eventHeaderSize)
	}
	for _, c := range []struct {
		name     string
		got, off uintptr
	}{
		{"pos", unsafe.Offsetof(ev.Pos), 16}, {"local", unsafe.Offsetof(ev.Local), 48},
		{"remote", unsafe.Offsetof(ev.Remote), 68}, {"tgid", unsafe.Offsetof(ev.Tgid), 88},
		{"len", unsafe.Offsetof(ev.Len), 96}, {"type", unsafe.Offsetof(ev.Type), 104},
		{"peer_set", unsafe.Offsetof(ev.PeerSet), 108}, {"tls", unsafe.Offsetof(ev.Tls), 109},
	} {
		if c.got != c.off {
			t.Errorf("offset of %s is %d, decoder uses %d", c.name, c.got, c.off)
		}
	}
}
