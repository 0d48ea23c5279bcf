package exec

import (
	"context"

	"github.com/apache/arrow/go/v15/arrow"

	"github.com/pxq-dev/pxq/table"
)

// tee lets several parents read one operator's output: batches are
// pulled on demand by the reader furthest ahead and kept until every
// reader has passed them. The kept bytes count against the memory limit.
type tee struct {
	q       *query
	name    string
	src     operator
	buf     []arrow.Record // buf[i] is batch base+i
	base    int
	done    bool
	readers []*teeReader
	open    int
	acct    *account
	bytes   int64
}

type teeReader struct {
	t      *tee
	pos    int
	closed bool
}

func (t *tee) reader() *teeReader {
	r := &teeReader{t: t}
	t.readers = append(t.readers, r)
	t.open++
	return r
}

func (r *teeReader) next(ctx context.Context) (arrow.Record, error) {
	t := r.t
	if r.pos < t.base+len(t.buf) {
		rec := t.buf[r.pos-t.base]
		r.pos++
		t.trim()
		return rec, nil
	}
	if t.done {
		return nil, nil
	}
	rec, err := t.src.next(ctx)
	if err != nil {
		return nil, err
	}
	if rec == nil {
		t.done = true
		t.src.close()
		return nil, nil
	}
	t.buf = append(t.buf, rec)
	if t.acct == nil {
		t.acct = &account{b: t.q.mem, op: t.name}
	}
	t.bytes += table.RecordBytes(rec)
	if err := t.acct.set(t.bytes); err != nil {
		return nil, err
	}
	r.pos++
	t.trim()
	return rec, nil
}

// trim drops the batches every open reader has passed.
func (t *tee) trim() {
	min := -1
	for _, r := range t.readers {
		if !r.closed && (min < 0 || r.pos < min) {
			min = r.pos
		}
	}
	if min < 0 {
		return
	}
	for t.base < min && len(t.buf) > 0 {
		t.bytes -= table.RecordBytes(t.buf[0])
		t.buf[0] = nil
		t.buf = t.buf[1:]
		t.base++
	}
	if t.acct != nil {
		t.acct.set(t.bytes)
	}
}

func (r *teeReader) close() {
	if r.closed {
		return
	}
	r.closed = true
	t := r.t
	t.open--
	if t.open == 0 {
		if !t.done {
			t.done = true
			t.src.close()
		}
		t.buf = nil
		if t.acct != nil {
			t.acct.release()
		}
		return
	}
	t.trim()
}
