package tls

import (
	"encoding/binary"
	"errors"
	"sync/atomic"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/ringbuf"
	"golang.org/x/sys/unix"
)

// fileEventSize is the size of struct file_event in bpf/trace.c: tgid,
// pad, dev, ino, ts.
const fileEventSize = 32

// Watcher examines the processes that the BPF side reports: one that
// executed a program, or mapped a file executable (ld.so loading
// libraries, dlopen), whose inode it had not seen. It blocks on the ring
// and wakes for each event: a new program's first SSL calls are missed
// until its probes are set.
type Watcher struct {
	p    *Prober
	rd   *ringbuf.Reader
	seen *ebpf.Map
	done chan struct{}
	// Events counts the events read; Retries those whose process could
	// not be read, so that the BPF side forgot their file for the next
	// process that maps it.
	Events, Retries atomic.Uint64
	// LastLatency and MaxLatency are the times, in ns, from an exec or
	// mmap to the end of the probing it caused, of the events that
	// probed a file: how long a new program runs unprobed.
	LastLatency, MaxLatency atomic.Int64
}

// Watch starts examining the processes of the events of ring (the BPF
// side's file_events); seen is the BPF side's set of inodes already
// reported (files_seen), from which a file is deleted when its process
// could not be examined.
func (p *Prober) Watch(ring, seen *ebpf.Map) (*Watcher, error) {
	rd, err := ringbuf.NewReader(ring)
	if err != nil {
		return nil, err
	}
	w := &Watcher{p: p, rd: rd, seen: seen, done: make(chan struct{})}
	go w.run()
	return w, nil
}

func (w *Watcher) run() {
	defer close(w.done)
	var rec ringbuf.Record
	for {
		if err := w.rd.ReadInto(&rec); err != nil {
			if errors.Is(err, ringbuf.ErrClosed) {
				return
			}
			continue
		}
		if len(rec.RawSample) < fileEventSize {
			continue
		}
		w.Events.Add(1)
		b := rec.RawSample
		pid := binary.NativeEndian.Uint32(b)
		dev, ino := binary.NativeEndian.Uint64(b[8:]), binary.NativeEndian.Uint64(b[16:])
		probed := w.p.Stats().FilesProbed
		if err := w.p.process(pid, FileKey{Dev: kernelDev(dev), Ino: ino}); err != nil {
			w.seen.Delete(struct{ Dev, Ino uint64 }{dev, ino})
			w.Retries.Add(1)
		}
		if w.p.Stats().FilesProbed > probed {
			var now unix.Timespec
			unix.ClockGettime(unix.CLOCK_MONOTONIC, &now)
			d := now.Nano() - int64(binary.NativeEndian.Uint64(b[24:]))
			w.LastLatency.Store(d)
			if d > w.MaxLatency.Load() {
				w.MaxLatency.Store(d)
			}
		}
	}
}

// Close stops the watcher and waits for it.
func (w *Watcher) Close() {
	w.rd.Close()
	<-w.done
}

// kernelDev converts a kernel dev_t (the BPF side's s_dev: major in the
// high 12 bits, minor in the low 20) to the form stat and FileKey use.
func kernelDev(dev uint64) uint64 {
	return unix.Mkdev(uint32(dev>>20), uint32(dev&0xfffff))
}
