package http

import (
	"encoding/json"
	"math/rand"
	"testing"
)

// headersJSONReference is the straightforward version headersJSON must
// equal: a map through encoding/json.
func headersJSONReference(hs []Header) string {
	if len(hs) == 0 {
		return "{}"
	}
	m := map[string]string{}
	for _, h := range hs {
		if v, ok := m[h.Name]; ok {
			m[h.Name] = v + "," + h.Value
			continue
		}
		m[h.Name] = h.Value
	}
	b, _ := json.Marshal(m)
	return string(b)
}

func TestHeadersJSONMatchesEncodingJSON(t *testing.T) {
	alphabet := []string{"a", "B", "<", ">", "&", "\"", "\\", "\n", "\t", "\x01", "\x7f", "é", "\u2028", "\u2029", "\xff", "\xe2\x82", " ", "-", "日"}
	r := rand.New(rand.NewSource(1))
	word := func() string {
		n := r.Intn(6)
		s := ""
		for i := 0; i < n; i++ {
			s += alphabet[r.Intn(len(alphabet))]
		}
		return s
	}
	for i := 0; i < 20000; i++ {
		var hs []Header
		for j := r.Intn(5); j > 0; j-- {
			name := []string{"Host", "Accept", "X-Dup", word()}[r.Intn(4)]
			hs = append(hs, Header{Name: name, Value: word()})
		}
		if got, want := headersJSON(hs), headersJSONReference(hs); got != want {
			t.Fatalf("headers %q:\n got %s\nwant %s", hs, got, want)
		}
	}
}

func BenchmarkHeadersJSON(b *testing.B) {
	hs := []Header{{"Host", "127.0.0.1:8080"}, {"User-Agent", "Go-http-client/1.1"}, {"Accept-Encoding", "gzip"}, {"Content-Type", "application/json"}, {"Content-Length", "512"}}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		headersJSON(hs)
	}
}
