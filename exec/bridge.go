package exec

import (
	"context"
	"fmt"
	"sync"

	"github.com/apache/arrow/go/v15/arrow"

	"github.com/pxq-dev/pxq/plan"
	"github.com/pxq-dev/pxq/types"
)

// Bridge connects the fragments of a distributed plan: the batches that a
// fragment's BridgeSink #id sends arrive at the BridgeSource #id of
// another fragment (from every agent that runs the sending fragment).
type Bridge interface {
	// Source returns the reader of the batches arriving at BridgeSource
	// id. The executor calls it once per BridgeSource node.
	Source(id int) (BatchReader, error)
	// Send hands one batch of BridgeSink id on. The batch is immutable
	// and stays valid after the call.
	Send(id int, rec arrow.Record) error
	// CloseSend says that BridgeSink id has sent its last batch.
	CloseSend(id int) error
}

// BatchReader yields record batches. Next returns (nil, nil) at the end
// and should return ctx's error promptly when ctx is cancelled.
type BatchReader interface {
	Next(ctx context.Context) (arrow.Record, error)
}

// ChanReader reads batches from a channel until it is closed.
type ChanReader <-chan arrow.Record

// Next returns the next batch of the channel, or nil once it is closed.
func (c ChanReader) Next(ctx context.Context) (arrow.Record, error) {
	select {
	case rec, ok := <-c:
		if !ok {
			return nil, nil
		}
		return rec, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// SliceReader reads a fixed list of batches.
type SliceReader struct {
	Records []arrow.Record
	pos     int
}

// Next returns the next batch of the list, or nil at its end.
func (s *SliceReader) Next(ctx context.Context) (arrow.Record, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if s.pos >= len(s.Records) {
		return nil, nil
	}
	s.pos++
	return s.Records[s.pos-1], nil
}

// LocalBridge is a Bridge within one process: it keeps what sinks send
// in memory, and a source reads everything sent to its id (so the
// sending fragments run first). It is safe for concurrent use.
type LocalBridge struct {
	mu   sync.Mutex
	sent map[int][]arrow.Record
}

// NewLocalBridge returns an empty local bridge.
func NewLocalBridge() *LocalBridge { return &LocalBridge{sent: map[int][]arrow.Record{}} }

// Source returns a reader of the batches sent to id so far.
func (b *LocalBridge) Source(id int) (BatchReader, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return &SliceReader{Records: append([]arrow.Record(nil), b.sent[id]...)}, nil
}

// Send keeps rec for the sources of id.
func (b *LocalBridge) Send(id int, rec arrow.Record) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.sent[id] = append(b.sent[id], rec)
	return nil
}

// CloseSend does nothing: a LocalBridge's sources read what was sent.
func (b *LocalBridge) CloseSend(id int) error { return nil }

// bridgeSourceOp reads a bridge's batches, checking that they have the
// node's columns.
type bridgeSourceOp struct {
	name   string
	r      BatchReader
	rel    types.Relation
	schema *arrow.Schema
}

func (q *query) newBridgeSource(n *plan.BridgeSource) (operator, error) {
	name := opName(n)
	if q.opts.Bridge == nil {
		return nil, fmt.Errorf("exec: %s: no bridge in the options", name)
	}
	r, err := q.opts.Bridge.Source(n.ID)
	if err != nil {
		return nil, fmt.Errorf("exec: %s: %w", name, err)
	}
	return &bridgeSourceOp{name: name, r: r, rel: n.Rel, schema: n.Rel.ArrowSchema()}, nil
}

func (b *bridgeSourceOp) next(ctx context.Context) (arrow.Record, error) {
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		rec, err := b.r.Next(ctx)
		if err != nil {
			return nil, fmt.Errorf("exec: %s: %w", b.name, err)
		}
		if rec == nil {
			return nil, nil
		}
		if rec.NumRows() == 0 {
			continue
		}
		if int(rec.NumCols()) != len(b.rel) {
			return nil, fmt.Errorf("exec: %s: batch has %d columns, want %v", b.name, rec.NumCols(), b.rel)
		}
		for i, c := range b.rel {
			if !arrow.TypeEqual(rec.Column(i).DataType(), c.Type.Arrow()) {
				return nil, fmt.Errorf("exec: %s: column %d is %v, want %s %v", b.name, i, rec.Column(i).DataType(), c.Name, c.Type)
			}
		}
		return newRecord(b.schema, rec.Columns(), rec.NumRows()), nil
	}
}

func (b *bridgeSourceOp) close() {}

// runBridgeSink sends every batch of a BridgeSink's input over the
// bridge.
func (q *query) runBridgeSink(ctx context.Context, s *plan.BridgeSink, in operator) error {
	name := opName(s)
	defer in.close()
	if q.opts.Bridge == nil {
		return fmt.Errorf("exec: %s: no bridge in the options", name)
	}
	schema := s.Relation().ArrowSchema()
	for {
		rec, err := in.next(ctx)
		if err != nil {
			return err
		}
		if rec == nil {
			break
		}
		if err := q.opts.Bridge.Send(s.ID, sliceRecord(schema, rec, 0, rec.NumRows())); err != nil {
			return fmt.Errorf("exec: %s: %w", name, err)
		}
	}
	if err := q.opts.Bridge.CloseSend(s.ID); err != nil {
		return fmt.Errorf("exec: %s: %w", name, err)
	}
	return nil
}
