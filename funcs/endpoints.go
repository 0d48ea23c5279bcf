package funcs

import (
	"encoding/binary"
	"encoding/json"
	"sort"
	"strings"
	"sync"

	"github.com/pxq-dev/pxq/types"
)

// Request paths as endpoints: Pixie's scripts group requests by endpoint
// template (/users/* rather than /users/17, /users/18, …) with three
// functions:
//
//   - _build_request_path_clusters(req_path), an aggregate, learns the
//     templates of the paths of a group, as a JSON object;
//   - _predict_request_path_cluster(req_path, clusters) names the template
//     a path belongs to;
//   - _match_endpoint(req_path, template) tells whether a path fits one.
//
// A segment becomes "*" when it looks like an identifier (digits, a UUID,
// a long hex or base64-ish token) or when the paths that share everything
// before it take many values there (more than maxSegmentValues), which is
// how a template such as /files/* is found for file names.

const (
	// maxSegmentValues is the number of distinct values a segment position
	// may take under one prefix before it becomes "*".
	maxSegmentValues = 8
	// maxClusterPaths bounds the distinct paths a group's state keeps.
	maxClusterPaths = 4096
)

func init() {
	RegisterAgg(&AggFunc{Name: "_build_request_path_clusters", Doc: "endpoint templates (/users/*) learned from a group's request paths, as JSON",
		Overloads: []AggOverload{{Args: []types.DataType{tS}, Ret: tS, New: func() Accumulator { return &pathClusterAcc{} }}}})
	register("_predict_request_path_cluster", "the endpoint template (from _build_request_path_clusters) that a request path (1st) belongs to",
		sig(tS, fn2(rStr, rStr, tS, predictCluster), tS, tS))
	register("_match_endpoint", "whether a request path (1st) fits an endpoint template (2nd; * matches one segment)",
		sig(tB, fn2(rStr, rStr, tB, matchEndpoint), tS, tS))
}

// pathOf is a request path without its query string and fragment.
func pathOf(p string) string {
	if i := strings.IndexAny(p, "?#"); i >= 0 {
		p = p[:i]
	}
	return p
}

func segments(p string) []string {
	p = strings.Trim(pathOf(p), "/")
	if p == "" {
		return nil
	}
	return strings.Split(p, "/")
}

// looksLikeID reports whether a path segment is an identifier rather than
// a name: a number, a UUID, a long hex string, or a long token mixing
// letters and digits.
func looksLikeID(s string) bool {
	if s == "" {
		return false
	}
	digits, hex, letters := 0, 0, 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9':
			digits++
			hex++
		case c >= 'a' && c <= 'f', c >= 'A' && c <= 'F':
			hex++
			letters++
		case c >= 'g' && c <= 'z', c >= 'G' && c <= 'Z':
			letters++
		case c == '-' || c == '_' || c == '.' || c == '=' || c == '~':
		default:
			return false
		}
	}
	switch {
	case digits == len(s):
		return true
	case len(s) == 36 && strings.Count(s, "-") == 4 && hex == 32:
		return true // UUID
	case len(s) >= 8 && hex == len(s) && digits > 0:
		return true // hex id or hash
	case len(s) >= 16 && digits > 0 && letters > 0:
		return true // opaque token
	}
	return false
}

// pathClusterAcc keeps, per group, the distinct paths seen (up to
// maxClusterPaths) with their counts.
type pathClusterAcc struct {
	paths []map[string]int64
}

func (a *pathClusterAcc) Resize(n int) { a.paths = grow(a.paths, n) }

func (a *pathClusterAcc) Bytes() int64 {
	b := int64(cap(a.paths)) * 8
	for _, m := range a.paths {
		for p := range m {
			b += int64(len(p)) + 48
		}
	}
	return b
}

func (a *pathClusterAcc) add(g uint32, p string, n int64) {
	m := a.paths[g]
	if m == nil {
		m = map[string]int64{}
		a.paths[g] = m
	}
	if _, ok := m[p]; ok || len(m) < maxClusterPaths {
		m[p] += n
	}
}

func (a *pathClusterAcc) Update(_ *Context, args []Value, groups []uint32, n int) error {
	get, err := getString(args[0])
	if err != nil {
		return err
	}
	for i, g := range groups[:n] {
		p := pathOf(get(i))
		if _, ok := a.paths[g][p]; ok {
			a.paths[g][p]++
			continue
		}
		a.add(g, strings.Clone(p), 1)
	}
	return nil
}

// State is the group's paths, each as count (8 bytes), length (4 bytes)
// and bytes, in sorted order.
func (a *pathClusterAcc) State(g int) []byte {
	m := a.paths[g]
	keys := make([]string, 0, len(m))
	for p := range m {
		keys = append(keys, p)
	}
	sort.Strings(keys)
	var b []byte
	for _, p := range keys {
		b = putU64(b, uint64(m[p]))
		b = binary.LittleEndian.AppendUint32(b, uint32(len(p)))
		b = append(b, p...)
	}
	return b
}

func (a *pathClusterAcc) MergeState(g int, b []byte) error {
	for len(b) > 0 {
		if len(b) < 12 {
			return errState("_build_request_path_clusters", b)
		}
		n := int64(binary.LittleEndian.Uint64(b))
		l := int(binary.LittleEndian.Uint32(b[8:]))
		if l > len(b)-12 || n <= 0 {
			return errState("_build_request_path_clusters", b)
		}
		a.add(uint32(g), string(b[12:12+l]), n)
		b = b[12+l:]
	}
	return nil
}

func (a *pathClusterAcc) Finalize(_ *Context, n int) (Value, error) {
	out := make([]string, n)
	for g := 0; g < n; g++ {
		out[g] = clustersJSON(a.paths[g])
	}
	return Value{Array: toArray(tS, out)}, nil
}

// clusters is the JSON form of learned templates.
type clusters struct {
	Templates []string `json:"templates"`
}

// trieNode is one segment position under a prefix.
type trieNode struct {
	children map[string]*trieNode
	end      bool // a path ends here
}

func clustersJSON(paths map[string]int64) string {
	root := &trieNode{children: map[string]*trieNode{}}
	for p := range paths {
		n := root
		for _, s := range segments(p) {
			if looksLikeID(s) {
				s = "*"
			}
			c := n.children[s]
			if c == nil {
				c = &trieNode{children: map[string]*trieNode{}}
				n.children[s] = c
			}
			n = c
		}
		n.end = true
	}
	collapse(root)
	set := map[string]bool{}
	walkTemplates(root, "", set)
	c := clusters{Templates: make([]string, 0, len(set))}
	for t := range set {
		c.Templates = append(c.Templates, t)
	}
	sort.Strings(c.Templates)
	b, _ := json.Marshal(c)
	return string(b)
}

// collapse merges the children of nodes with too many distinct segments
// into one "*" child, bottom-up.
func collapse(n *trieNode) {
	if len(n.children) > maxSegmentValues {
		star := &trieNode{children: map[string]*trieNode{}}
		for _, c := range n.children {
			mergeInto(star, c)
		}
		n.children = map[string]*trieNode{"*": star}
	}
	for _, c := range n.children {
		collapse(c)
	}
}

func mergeInto(dst, src *trieNode) {
	dst.end = dst.end || src.end
	for s, c := range src.children {
		d := dst.children[s]
		if d == nil {
			d = &trieNode{children: map[string]*trieNode{}}
			dst.children[s] = d
		}
		mergeInto(d, c)
	}
}

func walkTemplates(n *trieNode, prefix string, out map[string]bool) {
	if n.end {
		if prefix == "" {
			out["/"] = true
		} else {
			out[prefix] = true
		}
	}
	for s, c := range n.children {
		walkTemplates(c, prefix+"/"+s, out)
	}
}

// matchEndpoint reports whether path fits template segment by segment, "*"
// matching any one segment.
func matchEndpoint(path, template string) bool {
	ps, ts := segments(path), segments(template)
	if len(ps) != len(ts) {
		return false
	}
	for i := range ps {
		if ts[i] != "*" && ts[i] != ps[i] {
			return false
		}
	}
	return true
}

// parsedClusters caches the parsed templates of the last clusters JSON
// seen: a query passes the same one on every row.
var parsedClusters struct {
	sync.Mutex
	src       string
	templates []string
}

func templatesOf(js string) []string {
	parsedClusters.Lock()
	defer parsedClusters.Unlock()
	if parsedClusters.src == js && parsedClusters.templates != nil {
		return parsedClusters.templates
	}
	var c clusters
	_ = json.Unmarshal([]byte(js), &c)
	// Most specific first: fewer wildcards, then longer.
	sort.SliceStable(c.Templates, func(i, j int) bool {
		wi, wj := strings.Count(c.Templates[i], "*"), strings.Count(c.Templates[j], "*")
		if wi != wj {
			return wi < wj
		}
		return len(c.Templates[i]) > len(c.Templates[j])
	})
	parsedClusters.src, parsedClusters.templates = js, append([]string{}, c.Templates...)
	return parsedClusters.templates
}

// predictCluster names the template of path among clusters; a path that
// fits none is its own template, with identifier segments as "*".
func predictCluster(path, js string) string {
	for _, t := range templatesOf(js) {
		if matchEndpoint(path, t) {
			return t
		}
	}
	segs := segments(path)
	for i, s := range segs {
		if looksLikeID(s) {
			segs[i] = "*"
		}
	}
	return "/" + strings.Join(segs, "/")
}
