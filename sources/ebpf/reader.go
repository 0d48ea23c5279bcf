package ebpf

import (
	"time"

	"golang.org/x/sys/unix"

	"github.com/pxq-dev/pxq/sources/ebpf/conntrack"
)

// reader is the pipeline's first stage: it reads the records of the BPF
// ring buffer where they lie, decodes each into an event, and hands it to
// the connection tracker. The tracer calls it from one goroutine at a time.
type reader struct {
	ring    *ring
	tracker *conntrack.Tracker
	// exited deletes the BPF side's entries of the connections of a
	// process that exited.
	exited func([]conntrack.Key)

	monoOff  int64 // add to a BPF (CLOCK_MONOTONIC) time for ns since the epoch
	ev       conntrack.Event
	recordFn func([]byte) // r.record, made once

	events, bad, readErrors uint64
}

func newReader(r *ring, t *conntrack.Tracker, exited func([]conntrack.Key)) *reader {
	rd := &reader{ring: r, tracker: t, exited: exited}
	rd.recordFn = rd.record
	rd.resyncClock()
	return rd
}

// resyncClock measures the offset between CLOCK_MONOTONIC (BPF's clock)
// and the wall clock.
func (r *reader) resyncClock() {
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	r.monoOff = time.Now().UnixNano() - ts.Nano()
}

// drain reads up to max records, without blocking, and returns the bytes
// it read.
func (r *reader) drain(max int) int {
	n := 0
	if r.ring.available() > 0 {
		var err error
		if _, n, err = r.ring.read(max, r.recordFn); err != nil {
			r.readErrors++
		}
	}
	// Every piece submitted before this batch has been read: holes that
	// remain are lost bytes.
	r.tracker.Settle()
	return n
}

func (r *reader) record(raw []byte) {
	ev := &r.ev
	if !decodeEvent(raw, ev, r.monoOff) {
		r.bad++
		return
	}
	r.events++
	if ev.Kind == conntrack.Exit {
		if keys := r.tracker.Exit(ev.TGID, ev.TS); len(keys) > 0 {
			r.exited(keys)
		}
		return
	}
	r.tracker.Handle(ev)
}
