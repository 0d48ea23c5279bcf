package planner

import (
	"math/rand"
	"testing"

	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"

	"github.com/pxq-dev/pxq/api/planpb"
	"github.com/pxq-dev/pxq/plan"
)

// mustMarshalNodes encodes a planpb.Plan written in protobuf text format,
// for tests that need malformed plans.
func mustMarshalNodes(t *testing.T, text string) []byte {
	t.Helper()
	var pb planpb.Plan
	if err := prototext.Unmarshal([]byte(text), &pb); err != nil {
		t.Fatalf("bad test plan %q: %v", text, err)
	}
	b, err := proto.Marshal(&pb)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestUnmarshalRejects(t *testing.T) {
	for name, b := range map[string][]byte{
		"garbage":         []byte("\xff\xff\xff"),
		"undefined input": mustMarshalNodes(t, `nodes:{id:1 sink:{input:7 name:"x"}} sinks:1`),
		"union no inputs": mustMarshalNodes(t, `nodes:{id:1 union:{}}`),
		"bad join side":   mustMarshalNodes(t, `nodes:{id:1 bridge_source:{}} nodes:{id:2 join:{left:1 right:1 output:{side:5}}}`),
		"bad agg mode":    mustMarshalNodes(t, `nodes:{id:1 bridge_source:{}} nodes:{id:2 aggregate:{input:1 mode:9}}`),
		"sink not sink":   mustMarshalNodes(t, `nodes:{id:1 bridge_source:{}} sinks:1`),
		"duplicate id":    mustMarshalNodes(t, `nodes:{id:1 bridge_source:{}} nodes:{id:1 bridge_source:{}}`),
		"empty node":      mustMarshalNodes(t, `nodes:{id:1}`),
	} {
		if _, err := Unmarshal(b); err == nil {
			t.Errorf("%s: Unmarshal accepted bad input", name)
		}
	}
}

func FuzzUnmarshal(f *testing.F) {
	for _, p := range corpus() {
		b, err := Marshal(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	r := rand.New(rand.NewSource(2))
	for i := 0; i < 20; i++ {
		b, err := Marshal(randomPlan(r))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := Unmarshal(b)
		if err != nil {
			return
		}
		// A decoded plan must be safe to use: format it, ask every node
		// for its relation, and marshal it again.
		_ = plan.Format(p)
		plan.Walk(p, func(n plan.Node) { _ = n.Relation() })
		if _, err := Marshal(p); err != nil {
			t.Fatalf("re-marshal of a decoded plan: %v", err)
		}
	})
}

// A chain of joins whose inputs are both the previous join asks for
// 2^depth relations; Unmarshal must refuse it quickly rather than hang
// whoever asks for a relation later.
func TestUnmarshalRejectsExponentialJoins(t *testing.T) {
	var pb planpb.Plan
	pb.Nodes = append(pb.Nodes, &planpb.Node{Id: 1, Op: &planpb.Node_BridgeSource{BridgeSource: &planpb.BridgeSource{
		Relation: []*planpb.Column{{Name: "a", Type: planpb.DataType_INT64}}}}})
	for id := uint32(2); id < 64; id++ {
		pb.Nodes = append(pb.Nodes, &planpb.Node{Id: id, Op: &planpb.Node_Join{Join: &planpb.Join{Left: id - 1, Right: id - 1,
			LeftOn: []string{"a"}, RightOn: []string{"a"}, Output: []*planpb.JoinColumn{{Side: 0, Name: "a", As: "a"}}}}})
	}
	b, err := proto.Marshal(&pb)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Unmarshal(b); err == nil {
		t.Fatal("Unmarshal accepted a plan whose relations take exponential time")
	}
}
