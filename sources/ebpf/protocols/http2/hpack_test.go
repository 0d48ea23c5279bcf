package http2

import (
	"bytes"
	"fmt"
	"math/rand"
	"slices"
	"testing"

	"golang.org/x/net/http2/hpack"

	"github.com/pxq-dev/pxq/sources/ebpf/protocols/http"
)

// blocks encodes n random header blocks with x/net's HPACK encoder:
// fields drawn from a small set so that the encoder indexes and refers
// back, values that change, never-indexed fields, and table size
// changes now and then.
func blocks(rnd *rand.Rand, n int) (enc [][]byte, want [][]http.Header) {
	var buf bytes.Buffer
	e := hpack.NewEncoder(&buf)
	e.SetMaxDynamicTableSizeLimit(maxTableSize)
	names := []string{":method", ":path", ":authority", "content-type", "user-agent", "x-id", "grpc-timeout", "cookie"}
	for i := 0; i < n; i++ {
		buf.Reset()
		if rnd.Intn(10) == 0 {
			e.SetMaxDynamicTableSize(uint32([]int{0, 64, 256, 4096, 16384}[rnd.Intn(5)]))
		}
		var fs []http.Header
		for j, m := 0, 1+rnd.Intn(8); j < m; j++ {
			f := hpack.HeaderField{Name: names[rnd.Intn(len(names))], Value: fmt.Sprint(rnd.Intn(6)), Sensitive: rnd.Intn(20) == 0}
			if rnd.Intn(4) == 0 {
				f.Value = fmt.Sprintf("v%d-%s", rnd.Intn(1000), bytes.Repeat([]byte("x"), rnd.Intn(200)))
			}
			if err := e.WriteField(f); err != nil {
				panic(err)
			}
			fs = append(fs, http.Header{Name: f.Name, Value: f.Value})
		}
		enc = append(enc, slices.Clone(buf.Bytes()))
		want = append(want, fs)
	}
	return enc, want
}

// decodeBlock decodes one block, written in pieces of at most step bytes.
func decodeBlock(d *decoder, b []byte, step int) ([]http.Header, bool) {
	d.begin()
	for len(b) > 0 {
		n := min(step, len(b))
		if err := d.write(b[:n]); err != nil {
			return nil, false
		}
		b = b[n:]
	}
	if err := d.end(); err != nil {
		return nil, false
	}
	return slices.Clone(d.fields), true
}

// TestDecoderFromStart decodes every block as sent.
func TestDecoderFromStart(t *testing.T) {
	rnd := rand.New(rand.NewSource(1))
	enc, want := blocks(rnd, 300)
	d := newDecoder(true, 1<<20)
	for i, b := range enc {
		got, ok := decodeBlock(d, b, 1+i%7)
		if !ok || !slices.Equal(got, want[i]) {
			t.Fatalf("block %d: %v %v, want %v", i, ok, got, want[i])
		}
	}
}

// TestDecoderMidStream starts decoding at every block of the sequence, as
// for a connection first seen there, and after blocks skipped in the
// middle, as for lost bytes: each block is then decoded right or fails,
// never wrong, and decoding recovers once blocks stop referring to
// entries it could not see.
func TestDecoderMidStream(t *testing.T) {
	for seed := int64(1); seed <= 20; seed++ {
		rnd := rand.New(rand.NewSource(seed))
		enc, want := blocks(rnd, 200)
		var decoded, failed int
		for start := 0; start < len(enc); start += 7 {
			d := newDecoder(false, 1<<20)
			for i := start; i < len(enc); i++ {
				if i == start+40 {
					// A gap: some blocks are not seen.
					i += rnd.Intn(5)
					d.reset(false)
					continue
				}
				got, ok := decodeBlock(d, enc[i], 1+rnd.Intn(16))
				if !ok {
					failed++
					d.reset(false)
					continue
				}
				if !slices.Equal(got, want[i]) {
					t.Fatalf("seed %d, from block %d: block %d decoded wrong:\n got %v\nwant %v", seed, start, i, got, want[i])
				}
				decoded++
			}
		}
		if decoded == 0 || failed == 0 {
			t.Errorf("seed %d: %d blocks decoded, %d failed: the test does not test", seed, decoded, failed)
		}
	}
}

// TestDecoderBounds: fields past the bound are dropped (the block still
// decodes, for the table), and a string past maxTableSize fails.
func TestDecoderBounds(t *testing.T) {
	var buf bytes.Buffer
	e := hpack.NewEncoder(&buf)
	e.WriteField(hpack.HeaderField{Name: "a", Value: "12345"})
	e.WriteField(hpack.HeaderField{Name: "b", Value: "12345"})
	d := newDecoder(true, 8)
	got, ok := decodeBlock(d, buf.Bytes(), 100)
	if !ok || len(got) != 1 || !d.overflow {
		t.Errorf("got %v %v overflow %v", got, ok, d.overflow)
	}
	buf.Reset()
	e.WriteField(hpack.HeaderField{Name: "big", Value: string(bytes.Repeat([]byte("z"), maxTableSize+1))})
	if _, ok := decodeBlock(newDecoder(true, 1<<20), buf.Bytes(), 1000); ok {
		t.Error("a value longer than maxTableSize decoded")
	}
}
