package metadata

import (
	"encoding/json"
	"reflect"
	"slices"
	"testing"
)

// TestReplayThroughJSON saves a snapshot as a capture does, replays it,
// and gets the history rules of a live store: the live pod of a reused
// name, the stopped one when none lives, leases by time, a range that
// leaves out what ended before it; what the snapshot does not know comes
// from the next provider (here a real process through Host).
func TestReplayThroughJSON(t *testing.T) {
	var live History[*Pod]
	old := &Pod{UID: "u1", Name: "web-0", Namespace: "shop", StartNS: 100, StopNS: 200, IP: "10.0.0.1"}
	cur := &Pod{UID: "u2", Name: "web-0", Namespace: "shop", StartNS: 210, IP: "10.0.0.1"}
	gone := &Pod{UID: "u3", Name: "batch", Namespace: "shop", StartNS: 10, StopNS: 50}
	lone := &Pod{UID: "u4", Name: "db-0", Namespace: "shop", StartNS: 100, StopNS: 150}
	for _, p := range []*Pod{old, gone, cur, lone} {
		live.Put(p)
	}
	leases := map[string][]IPLease{"10.0.0.1": {{PodUID: "u1", StartNS: 100, StopNS: 200}, {PodUID: "u2", StartNS: 210}}}
	snap := &Snapshot{Mode: ModeKubernetes, Hostname: "node-a", StartNS: 120, EndNS: 300,
		Pods: live.During(120, 300), PodIPs: LeasesDuring(leases, 120, 300)}
	if got := snap.Pods; !slices.Equal(got, []*Pod{lone, old, cur}) {
		t.Fatalf("During = %v, want db-0, then web-0 in the order first seen", got)
	}
	b, err := json.Marshal(snap)
	if err != nil {
		t.Fatal(err)
	}
	var back Snapshot
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	host, err := NewHost()
	if err != nil {
		t.Fatal(err)
	}
	_, upid := startSleep(t)
	r := NewReplay(&back, host)

	for name, want := range map[string]*Pod{"shop/web-0": cur, "shop/db-0": lone} {
		if got := r.PodByName(name); !reflect.DeepEqual(got, want) {
			t.Errorf("PodByName(%s) = %+v, want %+v", name, got, want)
		}
	}
	if got := r.Pod("u3"); got != nil {
		t.Errorf("a pod that ended before the range was kept: %+v", got)
	}
	for ts, want := range map[int64]string{150: "u1", 205: "", 250: "u2", 0: "u2"} {
		got := r.PodByIP("10.0.0.1", ts)
		if (got == nil) != (want == "") || (got != nil && got.UID != want) {
			t.Errorf("PodByIP at %d = %+v, want %q", ts, got, want)
		}
	}
	wantNames := append([]string{"shop/web-0"}, host.Names("pod")...) // and the host's entities
	slices.Sort(wantNames)
	if got := r.Names("pod"); !slices.Equal(got, wantNames) {
		t.Errorf("Names(pod) = %v, want %v", got, wantNames)
	}
	if r.Hostname() != "node-a" {
		t.Errorf("Hostname = %q", r.Hostname())
	}
	if p := r.Process(upid); p == nil || p.Cmdline != "sleep 300" {
		t.Errorf("a process the snapshot lacks, from the next provider: %+v", p)
	}
	// Saved again, the replay keeps what it knows.
	again := r.Snapshot(120, 300)
	if !reflect.DeepEqual(again.Pods, back.Pods) || !reflect.DeepEqual(again.PodIPs, back.PodIPs) || again.Mode != ModeKubernetes {
		t.Errorf("replay snapshot %+v, want %+v", again, back)
	}
}
