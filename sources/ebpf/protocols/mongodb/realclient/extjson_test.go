package realclient

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/bson/primitive"

	"github.com/pxq-dev/pxq/sources/ebpf/protocols/mongodb"
)

// TestExtendedJSON checks the parser's BSON decoder against the
// driver's: documents of every BSON type, encoded by the driver, must
// decode to the JSON value of the driver's relaxed Extended JSON.
func TestExtendedJSON(t *testing.T) {
	rng := rand.New(rand.NewPCG(15, 9))
	oid, _ := primitive.ObjectIDFromHex("65a1b2c3d4e5f60718293a4b")
	decimals := []string{"0", "1.5", "-0.001", "1E+10", "123456789012345678901234567890.1234", "1E-20", "-1.000", "9.999999999999999999999999999999999E+6144", "NaN", "Infinity", "-Infinity", "0E-6176", "1E+3"}
	fixed := doc(
		"double", 1.0, "frac", -2.5, "big", 1e300, "tiny", 5e-324, "inf", math.Inf(1), "nan", math.NaN(),
		"string", "héllo \"quoted\"\n\t\x01 ☃", "doc", doc("a", int32(1), "b", bson.D{}), "arr", bson.A{int32(1), "two", bson.A{}, doc("x", nil)},
		"bin", primitive.Binary{Subtype: 0, Data: []byte{0, 1, 2, 255}}, "uuid", primitive.Binary{Subtype: 4, Data: make([]byte, 16)},
		"oldbin", primitive.Binary{Subtype: 2, Data: []byte("abc")},
		"undef", primitive.Undefined{}, "oid", oid, "t", true, "f", false,
		"date", primitive.NewDateTimeFromTime(time.Date(2024, 1, 2, 3, 4, 5, 678e6, time.UTC)),
		"date0", primitive.NewDateTimeFromTime(time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)),
		"before1970", primitive.DateTime(-1), "far", primitive.DateTime(253402300800000),
		"null", nil, "re", primitive.Regex{Pattern: `^a.*"b`, Options: "i"},
		"dbp", primitive.DBPointer{DB: "pxq.items", Pointer: oid}, "code", primitive.JavaScript("function() { return 1; }"),
		"sym", primitive.Symbol("sym"), "scope", primitive.CodeWithScope{Code: "x", Scope: doc("x", int32(1))},
		"i32", int32(math.MinInt32), "ts", primitive.Timestamp{T: 1700000000, I: 7}, "i64", int64(math.MaxInt64),
		"min", primitive.MinKey{}, "max", primitive.MaxKey{}, "key with \x7f", int32(0),
	)
	for i, s := range decimals {
		d, err := primitive.ParseDecimal128(s)
		if err != nil {
			t.Fatalf("%s: %v", s, err)
		}
		fixed = append(fixed, bson.E{Key: "dec" + string(rune('a'+i)), Value: d})
	}
	docs := []bson.D{fixed, {}}
	for range 300 {
		docs = append(docs, randomDoc(rng, 0))
	}
	for i, d := range docs {
		raw, err := bson.Marshal(d)
		if err != nil {
			t.Fatal(err)
		}
		want, err := bson.MarshalExtJSON(d, false, false)
		if err != nil {
			t.Fatal(err)
		}
		got, ok := mongodb.AppendJSON(nil, raw, 1<<20)
		if !ok {
			t.Fatalf("doc %d: not decoded whole: %s", i, got)
		}
		if i == 0 && testing.Verbose() {
			t.Logf("%s", got)
		}
		if !sameJSON(t, got, want) {
			t.Errorf("doc %d:\n got %s\nwant %s", i, got, want)
		}
		// Cut anywhere, or with a small budget, the text stays JSON, no
		// longer than the budget, and says it was cut.
		for _, n := range []int{len(raw) / 3, len(raw) - 1} {
			if n < 0 {
				continue
			}
			part, ok := mongodb.AppendJSON(nil, raw[:n], 1<<20)
			if ok || !json.Valid(part) {
				t.Errorf("doc %d cut at %d: ok %v, %s", i, n, ok, part)
			}
		}
		for _, max := range []int{20, 40, 100} {
			part, ok := mongodb.AppendJSON(nil, raw, max)
			if len(part) > max || !json.Valid(part) || (ok && len(want) > max) {
				t.Errorf("doc %d in %d bytes: ok %v, %s", i, max, ok, part)
			}
			if !ok && !strings.HasSuffix(string(part), `"$truncated":true}`) {
				t.Errorf("doc %d in %d bytes: not marked: %s", i, max, part)
			}
		}
	}
}

// sameJSON reports whether a and b are the same JSON value, numbers
// compared by value.
func sameJSON(t *testing.T, a, b []byte) bool {
	t.Helper()
	var va, vb any
	if err := json.Unmarshal(a, &va); err != nil {
		t.Errorf("%s: %v", a, err)
		return false
	}
	if err := json.Unmarshal(b, &vb); err != nil {
		t.Errorf("%s: %v", b, err)
		return false
	}
	return reflect.DeepEqual(va, vb)
}

// randomDoc makes a document of random keys and values, nested at most
// 4 deep.
func randomDoc(rng *rand.Rand, depth int) bson.D {
	d := bson.D{}
	for i := range rng.IntN(6) {
		d = append(d, bson.E{Key: randomString(rng) + string(rune('a'+i)), Value: randomValue(rng, depth)})
	}
	return d
}

func randomValue(rng *rand.Rand, depth int) any {
	switch n := rng.IntN(12); {
	case n == 0 && depth < 4:
		return randomDoc(rng, depth+1)
	case n == 1 && depth < 4:
		var a bson.A
		for range rng.IntN(4) {
			a = append(a, randomValue(rng, depth+1))
		}
		return a
	case n == 2:
		return rng.NormFloat64() * math.Pow(10, float64(rng.IntN(40)-20))
	case n == 3:
		return int32(rng.Uint32())
	case n == 4:
		return int64(rng.Uint64())
	case n == 5:
		return primitive.DateTime(rng.Int64N(400000000000000) - 100000000000000)
	case n == 6:
		b := make([]byte, rng.IntN(20))
		for i := range b {
			b[i] = byte(rng.UintN(256))
		}
		return primitive.Binary{Subtype: byte(rng.UintN(6)), Data: b}
	case n == 7:
		d, _ := primitive.ParseDecimal128FromBigInt(bigInt(rng), -rng.IntN(40)+10)
		return d
	case n == 8:
		return rng.IntN(2) == 0
	case n == 9:
		return primitive.Timestamp{T: rng.Uint32(), I: rng.Uint32()}
	}
	return randomString(rng)
}

func randomString(rng *rand.Rand) string {
	const chars = "abcXYZ09 _-\"\\\n\té☃😀"
	r := []rune(chars)
	var b strings.Builder
	for range rng.IntN(8) {
		b.WriteRune(r[rng.IntN(len(r))])
	}
	return b.String()
}
