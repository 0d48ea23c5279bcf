package exec

import (
	"fmt"
	"math/rand"
	"testing"
)

// The byte-string table against a Go map, on keys of every length from
// 0 to 40 that share prefixes, suffixes and bytes (so that the short
// keys' overlapping words and the length must tell them apart), added
// in random order, found again, and absent keys not found.
func TestBytesTableKeys(t *testing.T) {
	var keys []string
	alpha := []string{"a", "b", "ab", "ba", "\x00"}
	for n := 0; n <= 40; n++ {
		for _, a := range alpha {
			k := ""
			for len(k) < n {
				k += a
			}
			keys = append(keys, k[:n], "x"+k[:n], k[:n]+"x")
		}
	}
	for i := 0; i < 2000; i++ { // enough for several rehashes
		keys = append(keys, fmt.Sprintf("10.1.%d.%d", i/250, i%250))
	}
	r := rand.New(rand.NewSource(3))
	r.Shuffle(len(keys), func(i, j int) { keys[i], keys[j] = keys[j], keys[i] })
	bt := newBytesTable()
	want := map[string]int32{}
	for _, k := range keys {
		id := bt.lookup([]byte(k), true)
		if w, ok := want[k]; ok {
			if id != w {
				t.Fatalf("key %q: id %d, first %d", k, id, w)
			}
			continue
		}
		if int(id) != len(want) {
			t.Fatalf("new key %q: id %d, want %d", k, id, len(want))
		}
		want[k] = id
	}
	for k, w := range want {
		if id := bt.lookup([]byte(k), false); id != w {
			t.Errorf("find %q: %d, want %d", k, id, w)
		}
		if got := string(bt.data[bt.off[w]:bt.off[w+1]]); got != k {
			t.Errorf("id %d holds %q, want %q", w, got, k)
		}
	}
	for _, k := range []string{"abc", "aab", "10.1.9.0", "\x00\x00\x00\x00\x00\x00\x00\x00\x01", "bab"} {
		if _, ok := want[k]; ok {
			continue
		}
		if id := bt.lookup([]byte(k), false); id != -1 {
			t.Errorf("absent %q found as %d (%q)", k, id, bt.data[bt.off[id]:bt.off[id+1]])
		}
	}
	if len(want) < 500 {
		t.Fatalf("only %d distinct keys", len(want))
	}
}
