// Package arrowipc encodes the record batches that pxq's services put in
// gRPC messages. Each message holds one batch as a complete Arrow IPC
// stream (schema message, record batch message, end-of-stream marker), so
// that a message decodes on its own: no state is kept across messages and
// a receiver may start reading anywhere. The schema travels without field
// metadata (names and types only, a few dozen bytes per column); the
// receiver knows the relation from the plan or the table announcement.
package arrowipc

import (
	"bytes"
	"fmt"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/array"
	"github.com/apache/arrow/go/v15/arrow/ipc"
	"github.com/apache/arrow/go/v15/arrow/memory"
)

// Encode returns rec as an Arrow IPC stream of one batch.
func Encode(rec arrow.Record) ([]byte, error) {
	fields := make([]arrow.Field, rec.NumCols())
	for i, f := range rec.Schema().Fields() {
		fields[i] = arrow.Field{Name: f.Name, Type: f.Type, Nullable: f.Nullable}
	}
	schema := arrow.NewSchema(fields, nil)
	plain := array.NewRecord(schema, rec.Columns(), rec.NumRows())
	defer plain.Release()
	var buf bytes.Buffer
	w := ipc.NewWriter(&buf, ipc.WithSchema(schema), ipc.WithAllocator(memory.DefaultAllocator))
	if err := w.Write(plain); err != nil {
		return nil, fmt.Errorf("arrowipc: encode batch: %w", err)
	}
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("arrowipc: encode batch: %w", err)
	}
	return buf.Bytes(), nil
}

// Decode returns the one record batch of an IPC stream made by Encode.
// The record is the caller's; it is allocated by the Go allocator and
// needs no Release.
func Decode(b []byte) (arrow.Record, error) {
	r, err := ipc.NewReader(bytes.NewReader(b), ipc.WithAllocator(memory.DefaultAllocator))
	if err != nil {
		return nil, fmt.Errorf("arrowipc: decode batch: %w", err)
	}
	defer r.Release()
	if !r.Next() {
		if err := r.Err(); err != nil {
			return nil, fmt.Errorf("arrowipc: decode batch: %w", err)
		}
		return nil, fmt.Errorf("arrowipc: decode batch: the stream holds no batch")
	}
	rec := r.Record()
	rec.Retain()
	return rec, nil
}
