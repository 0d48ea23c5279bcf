package k8s

import (
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ktypes "k8s.io/apimachinery/pkg/types"
)

func TestNamesListsLiveObjects(t *testing.T) {
	s := NewStore(StoreConfig{NodeName: "node-a", Hostname: "node-a"})
	now := time.Now()
	pod := func(ns, name, uid string) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, UID: ktypes.UID(uid), CreationTimestamp: metav1.NewTime(now)},
			Status: corev1.PodStatus{Phase: corev1.PodRunning}}
	}
	s.ApplyNamespace(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop", UID: "ns-1"}})
	s.ApplyNode(&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-a", UID: "node-1"}})
	s.ApplyPod(pod("shop", "web-1", "p1"))
	s.ApplyPod(pod("shop", "api-1", "p2"))
	gone := pod("shop", "old-1", "p3")
	s.ApplyPod(gone)
	s.DeletePod(gone)
	s.ApplyService(&corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web", UID: "s1"}})
	for kind, want := range map[string]string{"pod": "shop/api-1,shop/web-1", "service": "shop/web",
		"namespace": "shop", "node": "node-a", "deployment": ""} {
		if got := strings.Join(s.Names(kind), ","); got != want {
			t.Errorf("Names(%q) = %q, want %q", kind, got, want)
		}
	}
}
