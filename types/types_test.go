package types

import "testing"

func TestUPIDLayout(t *testing.T) {
	u := UPID(7, 12345, 987654321)
	if u.ASID() != 7 || u.PID() != 12345 || u.StartNS() != 987654321 {
		t.Fatalf("fields of %v", u)
	}
	b := u.Bytes()
	if b[0] != 0x39 || b[1] != 0x30 || b[4] != 7 { // high word little-endian: pid then asid
		t.Errorf("layout % x", b)
	}
	if GetUInt128(b) != u {
		t.Errorf("round trip %v", GetUInt128(b))
	}
}

func TestRelationArrowRoundTrip(t *testing.T) {
	rel := Relation{{Name: "time_", Type: Time64NS, Semantic: STTimeNS}, {Name: "upid", Type: UInt128, Semantic: STUPID},
		{Name: "b", Type: Boolean, Semantic: STNone}, {Name: "lat", Type: Int64, Semantic: STDurationNS, Desc: "latency"},
		{Name: "f", Type: Float64, Semantic: STPercent}, {Name: "s", Type: String, Semantic: STPodName}}
	got, err := FromArrowSchema(rel.ArrowSchema())
	if err != nil {
		t.Fatal(err)
	}
	for i := range rel {
		if got[i] != rel[i] {
			t.Errorf("column %d: %+v, want %+v", i, got[i], rel[i])
		}
	}
}
