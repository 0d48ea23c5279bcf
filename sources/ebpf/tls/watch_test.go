package tls

import (
	"testing"
	"unsafe"

	"github.com/pxq-dev/pxq/sources/ebpf/bpf"
)

// The watcher decodes struct file_event by hand.
func TestFileEventLayout(t *testing.T) {
	var ev bpf.TraceFileEvent
	if s := unsafe.Sizeof(ev); s != fileEventSize {
		t.Fatalf("struct file_event is %d bytes, the watcher expects %d", s, fileEventSize)
	}
	for _, c := range []struct {
		name     string
		got, off uintptr
	}{{"dev", unsafe.Offsetof(ev.Dev), 8}, {"ino", unsafe.Offsetof(ev.Ino), 16}, {"ts", unsafe.Offsetof(ev.Ts), 24}} {
		if c.got != c.off {
			t.Errorf("offset of %s is %d, the watcher uses %d", c.name, c.got, c.off)
		}
	}
	if got := kernelDev(8<<20 | 2); got != 0x802 {
		t.Errorf("kernelDev(8:2) = %#x", got)
	}
}
