package k8s

// lifetime is what history needs of an entity: when it stopped existing
// (0 while it exists).
type lifetime interface{ stopNS() int64 }

// history indexes entities of one kind by UID and by name, keeping
// deleted ones (with their stop time) until they are pruned, so that the
// past stays nameable. Not safe for concurrent use: the Store's lock
// guards it.
type history[T lifetime] struct {
	byUID  map[string]T
	byName map[string][]string // name → UIDs in the order first seen
}

func newHistory[T lifetime]() history[T] {
	return history[T]{byUID: make(map[string]T), byName: make(map[string][]string)}
}

// put adds or replaces the entity uid, known by name.
func (h *history[T]) put(uid, name string, v T) {
	if _, ok := h.byUID[uid]; !ok {
		h.byName[name] = append(h.byName[name], uid)
	}
	h.byUID[uid] = v
}

// get returns the entity uid, if known.
func (h *history[T]) get(uid string) (T, bool) {
	v, ok := h.byUID[uid]
	return v, ok
}

// named returns the entity called name: a live one (the last seen), else
// the one that stopped last.
func (h *history[T]) named(name string) (T, bool) {
	var best T
	found := false
	uids := h.byName[name]
	for i := len(uids) - 1; i >= 0; i-- {
		v, ok := h.byUID[uids[i]]
		if !ok {
			continue
		}
		if v.stopNS() == 0 {
			return v, true
		}
		if !found || v.stopNS() > best.stopNS() {
			best, found = v, true
		}
	}
	return best, found
}

// prune forgets entities that stopped before cutoff; name lists keep only
// known UIDs.
func (h *history[T]) prune(cutoff int64, nameOf func(T) string) {
	for uid, v := range h.byUID {
		if s := v.stopNS(); s != 0 && s < cutoff {
			delete(h.byUID, uid)
			name := nameOf(v)
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
	}
}
