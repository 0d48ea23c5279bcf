package metadata

import "sort"

// Entity is a metadata value that a History can hold: *Pod, *Service,
// *ReplicaSet, *Deployment, *Container, *Namespace or *Node.
type Entity interface {
	// key returns the entity's UID (a container's runtime id) and the
	// name lookups use ("namespace/name" or bare, as the kind says).
	key() (uid, name string)
	// lifetime returns when the entity started and stopped (0: still
	// there).
	lifetime() (start, stop int64)
}

func (p *Pod) key() (string, string)        { return p.UID, p.QualifiedName() }
func (s *Service) key() (string, string)    { return s.UID, s.QualifiedName() }
func (r *ReplicaSet) key() (string, string) { return r.UID, r.QualifiedName() }
func (d *Deployment) key() (string, string) { return d.UID, d.QualifiedName() }
func (c *Container) key() (string, string)  { return c.ID, c.Name }
func (n *Namespace) key() (string, string)  { return n.UID, n.Name }
func (n *Node) key() (string, string)       { return n.UID, n.Name }

func (p *Pod) lifetime() (int64, int64)        { return p.StartNS, p.StopNS }
func (s *Service) lifetime() (int64, int64)    { return s.StartNS, s.StopNS }
func (r *ReplicaSet) lifetime() (int64, int64) { return r.StartNS, r.StopNS }
func (d *Deployment) lifetime() (int64, int64) { return d.StartNS, d.StopNS }
func (c *Container) lifetime() (int64, int64)  { return c.StartNS, c.StopNS }
func (n *Namespace) lifetime() (int64, int64)  { return n.StartNS, n.StopNS }
func (n *Node) lifetime() (int64, int64)       { return n.StartNS, n.StopNS }

func stopOf[T Entity](v T) int64 { _, s := v.lifetime(); return s }

// History indexes entities of one kind by UID and by name, keeping the
// stopped ones (with their stop time) until they are pruned, so that the
// past stays nameable. The zero value is empty and ready. Not safe for
// concurrent use: its owner's lock guards it.
type History[T Entity] struct {
	byUID  map[string]T
	byName map[string][]string // name → UIDs in the order first seen
}

// Put adds or replaces an entity. An entity keeps its UID and name for
// life (a renamed object is a new object in Kubernetes).
func (h *History[T]) Put(v T) {
	if h.byUID == nil {
		h.byUID, h.byName = make(map[string]T), make(map[string][]string)
	}
	uid, name := v.key()
	if _, ok := h.byUID[uid]; !ok {
		h.byName[name] = append(h.byName[name], uid)
	}
	h.byUID[uid] = v
}

// Get returns the entity uid, if known.
func (h *History[T]) Get(uid string) (T, bool) {
	v, ok := h.byUID[uid]
	return v, ok
}

// Named returns the entity called name: a live one (the last seen), else
// the one that stopped last.
func (h *History[T]) Named(name string) (T, bool) {
	var best T
	found := false
	uids := h.byName[name]
	for i := len(uids) - 1; i >= 0; i-- {
		v, ok := h.byUID[uids[i]]
		if !ok {
			continue
		}
		stop := stopOf(v)
		if stop == 0 {
			return v, true
		}
		if !found || stop > stopOf(best) {
			best, found = v, true
		}
	}
	return best, found
}

// Prune forgets the entities that stopped before cutoff.
func (h *History[T]) Prune(cutoff int64) {
	for uid, v := range h.byUID {
		if s := stopOf(v); s != 0 && s < cutoff {
			delete(h.byUID, uid)
			_, name := v.key()
			h.dropName(name, uid)
		}
	}
}

func (h *History[T]) dropName(name, uid string) {
	uids := h.byName[name][:0]
	for _, u := range h.byName[name] {
		if u != uid {
			uids = append(uids, u)
		}
	}
	if len(uids) == 0 {
		delete(h.byName, name)
	} else {
		h.byName[name] = uids
	}
}

// LiveNames lists, sorted, the names of the entities still there.
func (h *History[T]) LiveNames() []string {
	var out []string
	for name, uids := range h.byName {
		for _, u := range uids {
			if v, ok := h.byUID[u]; ok && stopOf(v) == 0 {
				out = append(out, name)
				break
			}
		}
	}
	sort.Strings(out)
	return out
}

// During lists the entities that existed at some time in [start, end]
// (those that started by end and had not stopped before start), by name
// and, within a name, in the order first seen: Putting them into an
// empty History in that order rebuilds the same answers for them.
func (h *History[T]) During(start, end int64) []T {
	names := make([]string, 0, len(h.byName))
	for n := range h.byName {
		names = append(names, n)
	}
	sort.Strings(names)
	var out []T
	for _, n := range names {
		for _, uid := range h.byName[n] {
			v, ok := h.byUID[uid]
			if !ok {
				continue
			}
			if from, to := v.lifetime(); from <= end && (to == 0 || to >= start) {
				out = append(out, v)
			}
		}
	}
	return out
}
