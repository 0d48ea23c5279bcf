package jvm

import (
	"encoding/binary"
	"errors"
	"reflect"
	"testing"
	"time"
)

// byteOrder is binary.LittleEndian or binary.BigEndian.
type byteOrder interface {
	binary.ByteOrder
	binary.AppendByteOrder
}

// encode writes entries as an hsperfdata file in byte order bo, laid out
// as HotSpot lays it out (entries padded to 8 bytes, data after the
// name), with room to spare after them.
func encode(bo byteOrder, entries []Entry) []byte {
	b := make([]byte, prologueSize)
	binary.BigEndian.PutUint32(b, magic)
	b[4] = orderLittle
	if bo == byteOrder(binary.BigEndian) {
		b[4] = orderBig
	}
	b[5], b[6], b[7] = 2, 0, 1
	for _, e := range entries {
		nameOff := entryHdrSize
		dataOff := (nameOff + len(e.Name) + 1 + 7) &^ 7
		data := e.Data
		vlen := 0
		if data == nil {
			data = bo.AppendUint64(nil, uint64(e.Long))
		} else {
			vlen = len(data)
			if e.Type == TypeLong {
				vlen /= 8
			}
		}
		size := (dataOff + len(data) + 7) &^ 7
		h := make([]byte, size)
		bo.PutUint32(h, uint32(size))
		bo.PutUint32(h[4:], uint32(nameOff))
		bo.PutUint32(h[8:], uint32(vlen))
		h[12], h[13], h[14], h[15] = e.Type, 0, byte(e.Units), byte(e.Variability)
		bo.PutUint32(h[16:], uint32(dataOff))
		copy(h[nameOff:], e.Name)
		copy(h[dataOff:], data)
		b = append(b, h...)
	}
	used := len(b)
	b = append(b, make([]byte, 256)...)
	bo.PutUint32(b[8:], uint32(used))
	bo.PutUint64(b[16:], 12345)
	bo.PutUint32(b[24:], prologueSize)
	bo.PutUint32(b[28:], uint32(len(entries)))
	return b
}

func long(name string, units Units, v int64) Entry {
	return Entry{Name: name, Type: TypeLong, Units: units, Variability: Variable, Long: v}
}

func str(name, v string) Entry {
	return Entry{Name: name, Type: TypeByte, Units: UnitsString, Variability: Constant, Data: append([]byte(v), 0, 0, 0)}
}

// serialHeap is the counters of a Serial-collected JVM's heap.
func serialHeap() []Entry {
	return []Entry{
		long("sun.os.hrt.frequency", UnitsHertz, 2_000_000_000),
		str("sun.gc.policy.name", "Copy:MSC"),
		long("sun.gc.collector.0.invocations", UnitsEvents, 7),
		long("sun.gc.collector.0.time", UnitsTicks, 3_000_000_000), // 1.5 s at 2 GHz
		long("sun.gc.collector.1.invocations", UnitsEvents, 2),
		long("sun.gc.collector.1.time", UnitsTicks, 500),
		long("sun.gc.generation.0.spaces", UnitsNone, 3),
		str("sun.gc.generation.0.name", "young"),
		long("sun.gc.generation.0.maxCapacity", UnitsBytes, 40<<20),
		long("sun.gc.generation.0.space.0.used", UnitsBytes, 1000),
		long("sun.gc.generation.0.space.0.capacity", UnitsBytes, 8000),
		long("sun.gc.generation.0.space.1.used", UnitsBytes, 100),
		long("sun.gc.generation.0.space.1.capacity", UnitsBytes, 1000),
		long("sun.gc.generation.0.space.2.used", UnitsBytes, 0),
		long("sun.gc.generation.0.space.2.capacity", UnitsBytes, 1000),
		long("sun.gc.generation.1.spaces", UnitsNone, 1),
		str("sun.gc.generation.1.name", "old"),
		long("sun.gc.generation.1.maxCapacity", UnitsBytes, 88<<20),
		long("sun.gc.generation.1.space.0.used", UnitsBytes, 5000),
		long("sun.gc.generation.1.space.0.capacity", UnitsBytes, 20000),
		// A JDK 7 permanent generation, which is not heap.
		long("sun.gc.generation.2.spaces", UnitsNone, 1),
		str("sun.gc.generation.2.name", "perm"),
		long("sun.gc.generation.2.maxCapacity", UnitsBytes, 64<<20),
		long("sun.gc.generation.2.space.0.used", UnitsBytes, 777),
		long("sun.gc.generation.2.space.0.capacity", UnitsBytes, 7777),
		{Name: "sun.test.longs", Type: TypeLong, Units: UnitsNone, Variability: Constant, Data: binary.LittleEndian.AppendUint64(nil, 9)},
	}
}

func TestParseBothByteOrders(t *testing.T) {
	want := Stats{
		YoungGCs: 7, YoungGCTime: 1500 * time.Millisecond,
		FullGCs: 2, FullGCTime: 250 * time.Nanosecond,
		UsedHeap: 6100, CommittedHeap: 30000, MaxHeap: 128 << 20,
	}
	for _, bo := range []byteOrder{binary.LittleEndian, binary.BigEndian} {
		in := serialHeap()
		p, err := Parse(encode(bo, in))
		if err != nil {
			t.Fatalf("%v: %v", bo, err)
		}
		if len(p.Entries) != len(in) || p.ModTime != 12345 || p.Major != 2 {
			t.Fatalf("%v: %d entries, mod time %d, version %d", bo, len(p.Entries), p.ModTime, p.Major)
		}
		for i, e := range in {
			if !reflect.DeepEqual(p.Entries[i], e) {
				t.Errorf("%v: entry %d = %+v, want %+v", bo, i, p.Entries[i], e)
			}
		}
		if s, ok := p.Str("sun.gc.policy.name"); !ok || s != "Copy:MSC" {
			t.Errorf("%v: policy name %q %v", bo, s, ok)
		}
		if _, ok := p.Long("sun.test.longs"); ok {
			t.Errorf("%v: a vector read as a scalar", bo)
		}
		got, err := StatsOf(p)
		if err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Errorf("%v: stats %+v, want %+v", bo, got, want)
		}
	}
}

func TestStatsOfG1MaxHeap(t *testing.T) {
	in := serialHeap()[:20]
	in[1] = str("sun.gc.policy.name", "GarbageFirst")
	in[8] = long("sun.gc.generation.0.maxCapacity", UnitsBytes, 128<<20+24)
	in[17] = long("sun.gc.generation.1.maxCapacity", UnitsBytes, 128<<20+8)
	p, err := Parse(encode(binary.LittleEndian, in))
	if err != nil {
		t.Fatal(err)
	}
	s, err := StatsOf(p)
	if err != nil {
		t.Fatal(err)
	}
	if s.MaxHeap != 128<<20+24 {
		t.Errorf("G1 max heap %d, want the largest generation's %d", s.MaxHeap, 128<<20+24)
	}
}

func TestStatsOfMissingCounter(t *testing.T) {
	in := serialHeap()
	for i, drop := range []string{"sun.os.hrt.frequency", "sun.gc.collector.1.time", "sun.gc.generation.0.space.2.capacity", "sun.gc.generation.0.spaces"} {
		var kept []Entry
		for _, e := range in {
			if e.Name != drop {
				kept = append(kept, e)
			}
		}
		p, err := Parse(encode(binary.LittleEndian, kept))
		if err != nil {
			t.Fatal(err)
		}
		s, err := StatsOf(p)
		if i < 3 && err == nil {
			t.Errorf("without %s: no error (%+v)", drop, s)
		}
		// Without generation 0, generation 1 is not found either.
		if i == 3 && err == nil {
			t.Errorf("without any generation: no error (%+v)", s)
		}
	}
}

func TestParseMalformed(t *testing.T) {
	good := encode(binary.LittleEndian, serialHeap())
	used := int(binary.LittleEndian.Uint32(good[8:]))
	// Every truncation inside the used part is refused.
	for n := 0; n < used; n++ {
		if _, err := Parse(good[:n]); err == nil {
			t.Fatalf("truncated to %d of %d bytes: no error", n, used)
		}
	}
	le := binary.LittleEndian
	cases := map[string]func(b []byte){
		"magic":           func(b []byte) { b[0] = 0 },
		"byte order":      func(b []byte) { b[4] = 7 },
		"version":         func(b []byte) { b[5] = 1 },
		"used too large":  func(b []byte) { le.PutUint32(b[8:], uint32(len(b)+1)) },
		"negative count":  func(b []byte) { le.PutUint32(b[28:], 0xffffffff) },
		"count too large": func(b []byte) { le.PutUint32(b[28:], 1000) },
		"entry offset":    func(b []byte) { le.PutUint32(b[24:], 4) },
		"entry length":    func(b []byte) { le.PutUint32(b[prologueSize:], 3) },
		"name offset":     func(b []byte) { le.PutUint32(b[prologueSize+4:], 1<<20) },
		"unterminated name": func(b []byte) {
			size := int(le.Uint32(b[prologueSize:]))
			for i := prologueSize + entryHdrSize; i < prologueSize+size; i++ {
				b[i] = 'x'
			}
		},
		"data offset":   func(b []byte) { le.PutUint32(b[prologueSize+16:], 1<<20) },
		"vector length": func(b []byte) { le.PutUint32(b[prologueSize+8:], 1<<20) },
	}
	for name, corrupt := range cases {
		b := append([]byte(nil), good...)
		corrupt(b)
		if _, err := Parse(b); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	b := append([]byte(nil), good...)
	b[7] = 0
	if _, err := Parse(b); !errors.Is(err, ErrNotReady) {
		t.Errorf("inaccessible file: %v, want ErrNotReady", err)
	}
}

func TestTicksToDuration(t *testing.T) {
	for _, c := range []struct {
		ticks, freq int64
		want        time.Duration
	}{
		{0, 1e9, 0},
		{-5, 1e9, 0},
		{1234, 1e9, 1234},
		{3, 2, 1500 * time.Millisecond},
		{1 << 62, 1e9, 1 << 62},
		{1 << 62, 1, 1<<63 - 1},
		{1<<63 - 1, 1<<63 - 1, time.Second},
	} {
		if got := ticksToDuration(c.ticks, c.freq); got != c.want {
			t.Errorf("ticksToDuration(%d, %d) = %d, want %d", c.ticks, c.freq, got, c.want)
		}
	}
}

// FuzzParse checks that no input makes Parse or StatsOf panic, and that
// what Parse accepts it reads back the same once written again.
func FuzzParse(f *testing.F) {
	f.Add(encode(binary.LittleEndian, serialHeap()))
	f.Add(encode(binary.BigEndian, serialHeap()))
	f.Add(encode(binary.LittleEndian, nil))
	f.Add([]byte{0xca, 0xfe, 0xc0, 0xc0})
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := Parse(b)
		if err != nil {
			return
		}
		StatsOf(p)
		bo := byteOrder(binary.LittleEndian)
		if b[4] == orderBig {
			bo = binary.BigEndian
		}
		q, err := Parse(encode(bo, p.Entries))
		if err != nil {
			t.Fatalf("rewritten file refused: %v", err)
		}
		if len(q.Entries) != len(p.Entries) {
			t.Fatalf("%d entries read back, want %d", len(q.Entries), len(p.Entries))
		}
		for i := range p.Entries {
			a, b := p.Entries[i], q.Entries[i]
			if len(a.Data) == 0 {
				a.Data = nil
			}
			if len(b.Data) == 0 {
				b.Data = nil
			}
			if !reflect.DeepEqual(a, b) {
				t.Fatalf("entry %d read back as %+v, want %+v", i, b, a)
			}
		}
	})
}
