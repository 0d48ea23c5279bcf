package metadata

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// Compose labels: a compose project is a host entity's namespace, a
// compose service its service. podman-compose sets the same labels.
const (
	LabelComposeProject = "com.docker.compose.project"
	LabelComposeService = "com.docker.compose.service"
)

// runtimeInfo is what a container runtime's own files say of a container.
type runtimeInfo struct {
	name       string // the runtime's name for it, "" when unknown
	labelsJSON string // its compose labels as a JSON object, "" when none
}

// maxRuntimeEntries bounds the per-container cache.
const maxRuntimeEntries = 1 << 12

// runtimeNames reads container names and compose labels from the files
// container runtimes keep, once per container:
//
//	docker  <docker root>/containers/<id>/config.v2.json (Name, Config.Labels)
//	podman  <storage root>/overlay-containers/containers.json (names only:
//	        podman keeps labels in its database)
//
// containerd and CRI-O keep names behind their APIs, so their containers
// get none. An answer, "unknown" included, never changes for an id: every
// process of a container then names the same entity. Reads are of local
// files, a few kB each. Safe for concurrent use.
type runtimeNames struct {
	dockerRoot string
	podmanRoot string

	mu     sync.Mutex
	byID   map[string]runtimeInfo
	podman podmanIndex
}

// podmanIndex caches containers.json, re-read when it changes.
type podmanIndex struct {
	mtime time.Time
	size  int64
	names map[string]string
}

func newRuntimeNames(dockerRoot, podmanRoot string) *runtimeNames {
	return &runtimeNames{dockerRoot: dockerRoot, podmanRoot: podmanRoot, byID: make(map[string]runtimeInfo)}
}

// lookup returns what the runtime (as ParseCgroupPath names it; "" when
// unsure) says of container id.
func (r *runtimeNames) lookup(id, runtime string) runtimeInfo {
	r.mu.Lock()
	defer r.mu.Unlock()
	if info, ok := r.byID[id]; ok {
		return info
	}
	var info runtimeInfo
	switch runtime {
	case "docker":
		info = r.docker(id)
	case "podman":
		info = r.podmanLocked(id)
	case "":
		if info = r.docker(id); info.name == "" {
			info = r.podmanLocked(id)
		}
	}
	if len(r.byID) >= maxRuntimeEntries {
		clear(r.byID)
	}
	r.byID[id] = info
	return info
}

// docker reads the container's config.v2.json.
func (r *runtimeNames) docker(id string) runtimeInfo {
	if r.dockerRoot == "" {
		return runtimeInfo{}
	}
	b, err := os.ReadFile(filepath.Join(r.dockerRoot, "containers", id, "config.v2.json"))
	if err != nil {
		return runtimeInfo{}
	}
	var c struct {
		Name   string
		Config struct {
			Labels map[string]string
		}
	}
	if json.Unmarshal(b, &c) != nil {
		return runtimeInfo{}
	}
	return runtimeInfo{name: strings.TrimPrefix(c.Name, "/"), labelsJSON: composeLabels(c.Config.Labels)}
}

// podmanLocked looks id up in containers.json, reading it again when it
// changed since the last read.
func (r *runtimeNames) podmanLocked(id string) runtimeInfo {
	if r.podmanRoot == "" {
		return runtimeInfo{}
	}
	path := filepath.Join(r.podmanRoot, "overlay-containers", "containers.json")
	st, err := os.Stat(path)
	if err != nil {
		return runtimeInfo{}
	}
	ix := &r.podman
	if !st.ModTime().Equal(ix.mtime) || st.Size() != ix.size {
		b, err := os.ReadFile(path)
		if err != nil {
			return runtimeInfo{}
		}
		var list []struct {
			ID    string   `json:"id"`
			Names []string `json:"names"`
		}
		if json.Unmarshal(b, &list) != nil {
			return runtimeInfo{}
		}
		ix.mtime, ix.size, ix.names = st.ModTime(), st.Size(), make(map[string]string, len(list))
		for _, c := range list {
			if len(c.Names) > 0 {
				ix.names[c.ID] = c.Names[0]
			}
		}
	}
	return runtimeInfo{name: ix.names[id]}
}

// composeLabels keeps of a container's labels those entities are named
// from, as a JSON object ("" when it has none).
func composeLabels(all map[string]string) string {
	kept := map[string]string{}
	for _, k := range []string{LabelComposeProject, LabelComposeService} {
		if v := all[k]; v != "" {
			kept[k] = v
		}
	}
	if len(kept) == 0 {
		return ""
	}
	b, _ := json.Marshal(kept) // sorted keys
	return string(b)
}
