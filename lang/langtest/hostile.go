// Package langtest reads the corpus of hostile scripts in
// lang/testdata/hostile, for the tests that send them through pxq's
// paths (the compiler, the CLI, the servers, the web UI).
package langtest

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Hostile is one script of the corpus, with what it expects (the
// corpus's README.md says how a file states it).
type Hostile struct {
	Name string // the file's base name
	Src  string // the script, its repeated lines expanded
	// Expect is a text the compile error contains, or "ok": the script
	// compiles.
	Expect string
	// HeapMB, when not 0, bounds the Go heap while it compiles instead
	// of the memory budget plus 200 MB.
	HeapMB int
}

// HostileDir returns the corpus's folder from a package folder of the
// module (the working directory of its tests).
func HostileDir(moduleRoot string) string {
	return filepath.Join(moduleRoot, "lang", "testdata", "hostile")
}

// LoadHostile reads every *.pxl of dir.
func LoadHostile(dir string) ([]Hostile, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.pxl"))
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("no hostile scripts in %s", dir)
	}
	var out []Hostile
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		h, err := parse(filepath.Base(f), string(b))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		out = append(out, h)
	}
	return out, nil
}

// parse reads a script's header comments and expands its repeated
// lines.
func parse(name, text string) (Hostile, error) {
	h := Hostile{Name: name}
	repeat := 1
	var lines, body []string
	inBody := false
	for _, l := range strings.SplitAfter(text, "\n") {
		var err error
		t := strings.TrimSpace(l)
		switch {
		case strings.HasPrefix(t, "# expect: "):
			h.Expect = strings.TrimPrefix(t, "# expect: ")
		case strings.HasPrefix(t, "# repeat: "):
			repeat, err = strconv.Atoi(strings.TrimPrefix(t, "# repeat: "))
		case strings.HasPrefix(t, "# heap: "):
			h.HeapMB, err = strconv.Atoi(strings.TrimPrefix(t, "# heap: "))
		case t == "#repeat-begin":
			inBody = true
		case t == "#repeat-end":
			inBody = false
			lines = append(lines, strings.Repeat(strings.Join(body, ""), repeat))
		case inBody:
			body = append(body, l)
		default:
			lines = append(lines, l)
		}
		if err != nil {
			return h, fmt.Errorf("bad header: %w", err)
		}
	}
	if h.Expect == "" {
		return h, fmt.Errorf("no '# expect:' line")
	}
	h.Src = strings.Join(lines, "")
	return h, nil
}
