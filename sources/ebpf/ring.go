package ebpf

import (
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"unsafe"

	cebpf "github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// ring reads a BPF ring buffer map in place: each record is handed to the
// caller as a slice of the mapped ring, and its space is given back to the
// producers when the caller returns. cilium/ebpf's ringbuf.Reader copies
// every record into the caller's buffer first, under a mutex, and ends
// every read with an epoll_wait; the tracer reads from one goroutine,
// polls on its own timer, and parses each record once, so neither the copy
// nor the syscall buys it anything.
//
// The layout is the kernel's (kernel/bpf/ringbuf.c): a consumer page the
// reader writes its position to, then a read-only producer page and the
// data pages, mapped twice in a row so that a record that wraps around the
// end is contiguous. Each record starts with an 8-byte header, its length
// in the low 30 bits of the first word with a busy and a discard bit
// above, and is padded to 8 bytes.
type ring struct {
	consMap, prodMap []byte
	consPos, prodPos *uintptr
	data             []byte // the data pages, twice
	mask             uintptr
}

const (
	ringHeaderSize = 8
	ringBusyBit    = 1 << 31
	ringDiscardBit = 1 << 30
)

func newRing(m *cebpf.Map) (*ring, error) {
	size := int(m.MaxEntries())
	page := os.Getpagesize()
	cons, err := unix.Mmap(m.FD(), 0, page, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("mmap ring buffer consumer page: %w", err)
	}
	prod, err := unix.Mmap(m.FD(), int64(page), page+2*size, unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		unix.Munmap(cons)
		return nil, fmt.Errorf("mmap ring buffer data pages: %w", err)
	}
	return &ring{
		consMap: cons,
		prodMap: prod,
		consPos: (*uintptr)(unsafe.Pointer(&cons[0])),
		prodPos: (*uintptr)(unsafe.Pointer(&prod[0])),
		data:    prod[page:],
		mask:    uintptr(size - 1),
	}, nil
}

// available returns the bytes the producers have written and the reader
// has not consumed, without a syscall.
func (r *ring) available() int {
	return int(atomic.LoadUintptr(r.prodPos) - atomic.LoadUintptr(r.consPos))
}

var errRingCorrupt = errors.New("ring buffer record runs past the producer position")

// read calls f with each committed record, oldest first, until the ring
// is empty, the next record is still being written, or max records have
// been read. The slice f gets is valid only until f returns. It returns
// the records and bytes read.
func (r *ring) read(max int, f func([]byte)) (records, bytes int, err error) {
	cons := atomic.LoadUintptr(r.consPos)
	prod := atomic.LoadUintptr(r.prodPos)
	for records < max && cons < prod {
		if prod-cons < ringHeaderSize {
			return records, bytes, errRingCorrupt
		}
		start := cons & r.mask
		// The atomic load orders the record's bytes after the kernel's
		// commit of its header (an xchg clearing the busy bit).
		hdr := atomic.LoadUint32((*uint32)(unsafe.Pointer(&r.data[start])))
		if hdr&ringBusyBit != 0 {
			break // not committed yet: read from here next time
		}
		n := uintptr(hdr &^ (ringBusyBit | ringDiscardBit))
		next := cons + ringHeaderSize + (n+7)&^7
		if next > prod {
			return records, bytes, errRingCorrupt
		}
		if hdr&ringDiscardBit == 0 {
			off := start + ringHeaderSize
			f(r.data[off : off+n : off+n])
			records++
			bytes += int(n)
		}
		cons = next
		atomic.StoreUintptr(r.consPos, cons)
	}
	return records, bytes, nil
}

func (r *ring) close() error {
	if r == nil || r.consMap == nil {
		return nil
	}
	err := errors.Join(unix.Munmap(r.prodMap), unix.Munmap(r.consMap))
	r.consMap, r.prodMap, r.data = nil, nil, nil
	return err
}
