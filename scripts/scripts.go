// Package scripts loads PxL scripts: the library embedded in pxq (px/…),
// the user's own folders, and single files. A script is a folder in the
// layout of Pixie's library — one .pxl file, vis.json and manifest.yaml —
// or a lone .pxl file.
package scripts

import (
	"embed"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/pxq-dev/pxq/lang"
)

// Script is a loaded script.
type Script struct {
	Name  string // library name (px/http_data) or the path it came from
	Path  string // file name used in error positions
	PXL   []byte
	Vis   *lang.Vis // nil when the script has no vis.json
	Short string
	Long  string
	// Source tells where the script came from: "library", a user
	// folder, or "file".
	Source string
	VisRaw []byte
}

//go:embed px
var library embed.FS

// EnvDirs names the environment variable holding extra script folders
// (separated by ':'), searched before the embedded library.
const EnvDirs = "PXQ_SCRIPTS"

// Library finds scripts by name in user folders, then the embedded
// library.
type Library struct {
	dirs []string
}

// NewLibrary returns a library that searches dirs (and the folders of
// $PXQ_SCRIPTS that exist) before the embedded scripts. A user script shadows a library script of
// the same name.
func NewLibrary(dirs ...string) *Library {
	if env := os.Getenv(EnvDirs); env != "" {
		// Like $PATH, an entry that is not a folder is skipped.
		for _, d := range strings.Split(env, ":") {
			if st, err := os.Stat(d); d != "" && err == nil && st.IsDir() {
				dirs = append(dirs, d)
			}
		}
	}
	return &Library{dirs: dirs}
}

// List returns every script, user folders' first, sorted by name, each
// name once.
func (l *Library) List() ([]*Script, error) {
	seen := map[string]bool{}
	var out []*Script
	for _, d := range l.dirs {
		names, err := scriptDirs(os.DirFS(d))
		if err != nil {
			return nil, fmt.Errorf("scripts folder %s: %w", d, err)
		}
		for _, n := range names {
			if seen[n] {
				continue
			}
			s, err := loadFS(os.DirFS(d), n, filepath.Join(d, n), d)
			if err != nil {
				return nil, err
			}
			seen[n] = true
			out = append(out, s)
		}
	}
	names, err := scriptDirs(library)
	if err != nil {
		return nil, err
	}
	for _, n := range names {
		if seen[n] {
			continue
		}
		s, err := loadFS(library, n, n, "library")
		if err != nil {
			return nil, err
		}
		seen[n] = true
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Get returns the script of that name (px/http_data).
func (l *Library) Get(name string) (*Script, error) {
	name = strings.Trim(name, "/")
	for _, d := range l.dirs {
		if isScriptDir(os.DirFS(d), name) {
			return loadFS(os.DirFS(d), name, filepath.Join(d, name), d)
		}
	}
	if isScriptDir(library, name) {
		return loadFS(library, name, name, "library")
	}
	all, _ := l.List()
	var names []string
	for _, s := range all {
		names = append(names, s.Name)
	}
	return nil, fmt.Errorf("no script named %q%s (see `pxq scripts list`)", name, hint(name, names))
}

// Load resolves what a user typed: a script folder, a .pxl file, or a
// library name.
func (l *Library) Load(ref string) (*Script, error) {
	if st, err := os.Stat(ref); err == nil {
		if st.IsDir() {
			dir := filepath.Clean(ref)
			return loadFS(os.DirFS(dir), ".", dir, "file")
		}
		src, err := os.ReadFile(ref)
		if err != nil {
			return nil, err
		}
		s := &Script{Name: ref, Path: ref, PXL: src, Source: "file"}
		// A .pxl next to a vis.json is a folder script.
		dir := filepath.Dir(ref)
		if vis, err := os.ReadFile(filepath.Join(dir, "vis.json")); err == nil {
			if s.Vis, err = lang.ParseVis(vis); err != nil {
				return nil, fmt.Errorf("%s: %w", filepath.Join(dir, "vis.json"), err)
			}
			s.VisRaw = vis
		}
		return s, nil
	}
	return l.Get(ref)
}

func isScriptDir(fsys fs.FS, dir string) bool {
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return false
	}
	for _, e := range entries {
		if !e.IsDir() && strings.HasSuffix(e.Name(), ".pxl") {
			return true
		}
	}
	return false
}

// scriptDirs lists the folders under fsys that hold a .pxl file.
func scriptDirs(fsys fs.FS) ([]string, error) {
	var out []string
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && p != "." && isScriptDir(fsys, p) {
			out = append(out, p)
		}
		return nil
	})
	return out, err
}

// loadFS loads the script folder dir of fsys.
func loadFS(fsys fs.FS, dir, display, source string) (*Script, error) {
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, err
	}
	name := dir
	if dir == "." {
		name = display
	}
	s := &Script{Name: name, Source: source}
	for _, e := range entries {
		p := path.Join(dir, e.Name())
		switch {
		case strings.HasSuffix(e.Name(), ".pxl"):
			if s.PXL != nil {
				return nil, fmt.Errorf("script %s has more than one .pxl file", display)
			}
			if s.PXL, err = fs.ReadFile(fsys, p); err != nil {
				return nil, err
			}
			s.Path = filepath.Join(display, e.Name())
		case e.Name() == "vis.json":
			raw, err := fs.ReadFile(fsys, p)
			if err != nil {
				return nil, err
			}
			if s.Vis, err = lang.ParseVis(raw); err != nil {
				return nil, fmt.Errorf("%s: %w", filepath.Join(display, "vis.json"), err)
			}
			s.VisRaw = raw
		case e.Name() == "manifest.yaml":
			raw, err := fs.ReadFile(fsys, p)
			if err != nil {
				return nil, err
			}
			m := parseManifest(string(raw))
			s.Short, s.Long = m["short"], m["long"]
		}
	}
	if s.PXL == nil {
		return nil, fmt.Errorf("%s holds no .pxl file", display)
	}
	return s, nil
}

// parseManifest reads the flat YAML of Pixie's manifest.yaml: `key: value`
// lines and folded or literal blocks (`key: >` / `key: |`).
func parseManifest(src string) map[string]string {
	out := map[string]string{}
	lines := strings.Split(src, "\n")
	for i := 0; i < len(lines); i++ {
		l := lines[i]
		if strings.HasPrefix(strings.TrimSpace(l), "#") || strings.TrimSpace(l) == "" || l[0] == ' ' || l[0] == '\t' {
			continue
		}
		k, v, ok := strings.Cut(l, ":")
		if !ok {
			continue
		}
		v = strings.TrimSpace(v)
		if v == ">" || v == "|" || v == ">-" || v == "|-" {
			var block []string
			for i+1 < len(lines) && (strings.TrimSpace(lines[i+1]) == "" || lines[i+1][0] == ' ' || lines[i+1][0] == '\t') {
				i++
				block = append(block, strings.TrimSpace(lines[i]))
			}
			sep := " "
			if v[0] == '|' {
				sep = "\n"
			}
			v = strings.TrimSpace(strings.Join(block, sep))
		}
		out[strings.TrimSpace(k)] = strings.Trim(v, `"'`)
	}
	return out
}

func hint(name string, names []string) string {
	for _, n := range names {
		if strings.HasSuffix(n, "/"+name) || strings.Contains(n, name) {
			return fmt.Sprintf("; did you mean %q?", n)
		}
	}
	return ""
}
