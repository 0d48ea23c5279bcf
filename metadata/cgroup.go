package metadata

import "strings"

// CgroupInfo is what a process's cgroup path tells of its container.
type CgroupInfo struct {
	ContainerID string // 64 hex digits, "" when not in a container
	Runtime     string // containerd, cri-o, docker, podman or "" when unsure
	PodUID      string // with dashes, "" when not in a Kubernetes pod
}

// runtimePrefixes are the prefixes container runtimes (through systemd or
// cgroupfs) give a container's cgroup: "cri-containerd-<id>.scope",
// "crio-<id>.scope", "docker-<id>.scope", "libpod-<id>.scope".
var runtimePrefixes = []struct{ prefix, runtime string }{
	{"cri-containerd-", "containerd"},
	{"containerd-", "containerd"},
	{"crio-", "cri-o"},
	{"docker-", "docker"},
	{"libpod-", "podman"},
}

// ParseCgroupPath reads the container id and pod UID out of one cgroup
// path, in the layouts kubelet and container runtimes use with cgroup v1
// and v2, with the systemd and the cgroupfs drivers:
//
//	/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod<uid_with_underscores>.slice/cri-containerd-<id>.scope
//	/kubepods/burstable/pod<uid>/<id>
//	/kubepods-besteffort-pod<uid>.slice:cri-containerd:<id>   (systemd driver on v1)
//	/system.slice/docker-<id>.scope, /docker/<id>
//
// Paths seen from inside a cgroup namespace ("/../../kubepods…") work too.
// CRI-O's monitor ("crio-conmon-<id>.scope") is not the container.
func ParseCgroupPath(path string) CgroupInfo {
	var info CgroupInfo
	segs := strings.Split(path, "/")
	for i := len(segs) - 1; i >= 0; i-- {
		seg := segs[i]
		if seg == "" || seg == ".." {
			continue
		}
		if info.ContainerID == "" && info.PodUID == "" {
			if id, rt, ok := containerSegment(seg); ok {
				info.ContainerID, info.Runtime = id, rt
				if j := strings.IndexByte(seg, ':'); j >= 0 {
					if uid, ok := podSegment(seg[:j]); ok {
						info.PodUID = uid
						break
					}
				}
				continue
			}
		}
		if uid, ok := podSegment(seg); ok {
			info.PodUID = uid
			break
		}
	}
	if info.ContainerID != "" && info.Runtime == "" && strings.Contains(path, "/docker/") {
		info.Runtime = "docker"
	}
	return info
}

// containerSegment recognizes a path segment naming a container.
func containerSegment(seg string) (id, runtime string, ok bool) {
	if strings.Contains(seg, "conmon") {
		return "", "", false
	}
	seg = strings.TrimSuffix(seg, ".scope")
	if j := strings.LastIndexByte(seg, ':'); j >= 0 {
		// "<pod slice>:cri-containerd:<id>" (systemd driver on cgroup v1).
		pre := seg[:j]
		seg = seg[j+1:]
		if k := strings.LastIndexByte(pre, ':'); k >= 0 {
			runtime = runtimeName(pre[k+1:] + "-")
		}
	}
	for _, p := range runtimePrefixes {
		if strings.HasPrefix(seg, p.prefix) {
			seg, runtime = seg[len(p.prefix):], p.runtime
			break
		}
	}
	if !isHexID(seg) {
		return "", "", false
	}
	return seg, runtime, true
}

func runtimeName(prefix string) string {
	for _, p := range runtimePrefixes {
		if p.prefix == prefix {
			return p.runtime
		}
	}
	return ""
}

// podSegment recognizes "pod<uid>" (cgroupfs) and
// "kubepods[-qos]-pod<uid_with_underscores>.slice" (systemd).
func podSegment(seg string) (string, bool) {
	seg = strings.TrimSuffix(seg, ".slice")
	j := strings.LastIndex(seg, "pod")
	if j < 0 {
		return "", false
	}
	if j > 0 && seg[j-1] != '-' {
		return "", false
	}
	uid := strings.ReplaceAll(seg[j+3:], "_", "-")
	if !isUUID(uid) {
		return "", false
	}
	return uid, true
}

func isHexID(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

func isUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
				return false
			}
		}
	}
	return true
}

// ParseProcCgroup reads the container of a process from the text of
// /proc/PID/cgroup. It looks at every hierarchy, not just the unified one:
// on a hybrid host a container's processes sit in v1 controllers while the
// v2 line says "0::/".
func ParseProcCgroup(text string) CgroupInfo {
	var best CgroupInfo
	for _, line := range strings.Split(text, "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		info := ParseCgroupPath(parts[2])
		if info.ContainerID != "" {
			return info
		}
		if best.PodUID == "" && info.PodUID != "" {
			best = info
		}
	}
	return best
}

// ProcCgroupPath picks from the text of /proc/PID/cgroup the path that
// names the process's host entity (see EntityOf): the first path that
// names a container, else the unified (v2) path, else systemd's v1
// hierarchy (name=systemd), which holds the unit tree on a hybrid host
// whose v2 line says "0::/". It returns "" when the text has neither a
// container path nor a v2 or name=systemd line.
func ProcCgroupPath(text string) string {
	var v2, systemd string
	for _, line := range strings.Split(text, "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		path := parts[2]
		if ParseCgroupPath(path).ContainerID != "" {
			return path
		}
		switch {
		case parts[0] == "0" && parts[1] == "":
			v2 = path
		case parts[1] == "name=systemd":
			systemd = path
		}
	}
	switch {
	case v2 != "" && v2 != "/":
		return v2
	case systemd != "" && systemd != "/":
		return systemd
	case v2 != "":
		return v2
	}
	return systemd
}
