// Package ui serves pxq's web UI: the built front end (embedded from
// dist/, so that `go build` needs no node) and the JSON and Arrow
// endpoints it calls. The wire format of POST /api/run is described in
// docs/ui.md and in run.go.
package ui

import (
	"context"
	"crypto/subtle"
	"embed"
	"encoding/json"
	"errors"
	"io/fs"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/pxq-dev/pxq/exec"
	"github.com/pxq-dev/pxq/metadata"
	"github.com/pxq-dev/pxq/query"
	"github.com/pxq-dev/pxq/scripts"
)

//go:embed dist
var dist embed.FS

// Runner runs scripts: an *engine.Engine, or a *query.Runner (over a
// broker, or shared with the gRPC services and their limits).
type Runner interface {
	Run(ctx context.Context, req query.Request, out exec.Output) (query.Result, error)
}

// Config configures the UI handler.
type Config struct {
	// Runner runs the scripts.
	Runner Runner
	// Library finds scripts by name.
	Library *scripts.Library
	// Token, when set, must come with every API request as
	// "Authorization: Bearer TOKEN". The page itself and its assets are
	// served without it (they hold no data); the UI asks for the token.
	Token string
	// Entities lists the names of pods, services, namespaces or nodes the
	// engine knows now (kind is "pod", "service", "namespace" or "node"),
	// for the inputs of entity-typed variables. May be nil, or return
	// nothing (host mode).
	Entities func(kind string) []string
	// Now, when set, is the now of every query (a UI over a recorded
	// capture answers as of its end). The present when nil.
	Now func() time.Time
	// MaxBody bounds the size of a run request (1 MiB when 0).
	MaxBody int64
	// DefaultScript is the script the landing page opens
	// (px/http_data when empty and the library has it).
	DefaultScript string
	// Note says where the data comes from, shown at the top of the
	// page (such as the demo's frozen "now").
	Note string
}

// Handler returns the UI: the page at /, its assets at /assets/, and the
// API under /api/.
func Handler(cfg Config) http.Handler {
	if cfg.MaxBody == 0 {
		cfg.MaxBody = 1 << 20
	}
	h := &handler{cfg: cfg, builtin: new(scripts.Library)}
	static, err := fs.Sub(dist, "dist")
	if err != nil {
		panic(err) // dist is embedded: cannot happen
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/scripts", h.auth(h.listScripts))
	mux.HandleFunc("GET /api/scripts/{name...}", h.auth(h.getScript))
	mux.HandleFunc("POST /api/run", h.auth(h.run))
	mux.HandleFunc("GET /api/entities", h.auth(h.entities))
	mux.HandleFunc("GET /api/info", h.auth(h.info))
	mux.HandleFunc("/api/", h.auth(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, errorBody{Message: "no such endpoint: " + r.Method + " " + r.URL.Path})
	}))
	files := http.FileServerFS(static)
	mux.HandleFunc("GET /assets/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-cache")
		files.ServeHTTP(w, r)
	})
	index, err := fs.ReadFile(static, "index.html")
	if err != nil {
		panic("ui: dist/index.html is missing: run `make ui`")
	}
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-cache")
		w.Write(index)
	})
	return securityHeaders(mux)
}

// securityHeaders adds headers that keep the page from running anything
// but its own scripts, whatever a result holds.
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		// Vega compiles expressions with the Function constructor unless
		// told otherwise, hence 'unsafe-eval' for scripts; nothing
		// inline, nothing from elsewhere.
		hd.Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'")
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Referrer-Policy", "no-referrer")
		next.ServeHTTP(w, r)
	})
}

type handler struct {
	cfg     Config
	builtin *scripts.Library // the embedded scripts only (no user folders)
}

// auth requires the bearer token when one is configured.
func (h *handler) auth(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if h.cfg.Token != "" {
			got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
			if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(h.cfg.Token)) != 1 {
				w.Header().Set("WWW-Authenticate", `Bearer realm="pxq"`)
				writeError(w, http.StatusUnauthorized, errorBody{Message: "this pxq server needs a token (Authorization: Bearer …)", Kind: "auth"})
				return
			}
		}
		next(w, r)
	}
}

// scriptInfo is one entry of GET /api/scripts.
type scriptInfo struct {
	Name   string `json:"name"`
	Short  string `json:"short"`
	Source string `json:"source"`
	// Shadows is set on a user folder's script that has the name of a
	// library script; the library's copy follows it, with Library set.
	Shadows bool `json:"shadows,omitempty"`
	// Library marks the library's copy of a shadowed script (open it
	// with ?library=1, run it with "library": true).
	Library bool `json:"library,omitempty"`
}

func (h *handler) listScripts(w http.ResponseWriter, r *http.Request) {
	all, err := h.cfg.Library.List()
	if err != nil {
		writeError(w, http.StatusInternalServerError, errorBody{Message: err.Error()})
		return
	}
	builtin := map[string]*scripts.Script{}
	if lib, err := h.builtin.List(); err == nil {
		for _, s := range lib {
			builtin[s.Name] = s
		}
	}
	out := make([]scriptInfo, 0, len(all))
	for _, s := range all {
		b := builtin[s.Name]
		shadows := s.Source != "library" && b != nil
		out = append(out, scriptInfo{Name: s.Name, Short: s.Short, Source: s.Source, Shadows: shadows})
		if shadows {
			out = append(out, scriptInfo{Name: b.Name, Short: b.Short, Source: b.Source, Library: true})
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// scriptDetail is the answer of GET /api/scripts/{name}.
type scriptDetail struct {
	Name     string          `json:"name"`
	Source   string          `json:"source"`
	PXL      string          `json:"pxl"`
	Vis      json.RawMessage `json:"vis"` // the vis.json text as it is, or null
	Manifest manifest        `json:"manifest"`
	// Shadows is set when a user folder's script hides the library's
	// script of the same name; Library when this is the library's copy.
	Shadows bool `json:"shadows,omitempty"`
	Library bool `json:"library,omitempty"`
}

type manifest struct {
	Short string `json:"short"`
	Long  string `json:"long"`
}

func (h *handler) getScript(w http.ResponseWriter, r *http.Request) {
	lib := r.URL.Query().Get("library") == "1"
	s, err := h.lookup(r.PathValue("name"), lib)
	if err != nil {
		writeError(w, http.StatusNotFound, errorBody{Message: forThePage(err.Error()), Kind: "not_found"})
		return
	}
	d := scriptDetail{Name: s.Name, Source: s.Source, PXL: string(s.PXL), Manifest: manifest{s.Short, s.Long}, Library: lib}
	if !lib && s.Source != "library" {
		_, err := h.builtin.Get(s.Name)
		d.Shadows = err == nil
	}
	if len(s.VisRaw) > 0 && json.Valid(s.VisRaw) {
		d.Vis = s.VisRaw
	} else {
		d.Vis = json.RawMessage("null")
	}
	writeJSON(w, http.StatusOK, d)
}

// lookup finds a script by name: in the configured library, or only in
// the embedded one (the library's copy of a shadowed script).
func (h *handler) lookup(name string, builtin bool) (*scripts.Script, error) {
	if builtin {
		return h.builtin.Get(name)
	}
	return h.cfg.Library.Get(name)
}

// serverInfo is the answer of GET /api/info: what the page says about
// the data, and the script it opens first.
type serverInfo struct {
	// Now is the fixed "now" of every query (RFC 3339, ns precision),
	// or "" when queries run at the present.
	Now           string `json:"now"`
	Note          string `json:"note"`
	DefaultScript string `json:"defaultScript"`
}

func (h *handler) info(w http.ResponseWriter, r *http.Request) {
	in := serverInfo{Note: h.cfg.Note, DefaultScript: h.cfg.DefaultScript}
	if h.cfg.Now != nil {
		in.Now = h.cfg.Now().UTC().Format(time.RFC3339Nano)
	}
	if in.DefaultScript == "" {
		if _, err := h.cfg.Library.Get("px/http_data"); err == nil {
			in.DefaultScript = "px/http_data"
		}
	}
	writeJSON(w, http.StatusOK, in)
}

// entityKinds are the kinds GET /api/entities answers.
var entityKinds = []string{"pod", "service", "namespace", "node"}

func (h *handler) entities(w http.ResponseWriter, r *http.Request) {
	kind := r.URL.Query().Get("kind")
	known := false
	for _, k := range entityKinds {
		known = known || k == kind
	}
	if !known {
		writeError(w, http.StatusBadRequest, errorBody{Message: "kind must be one of " + strings.Join(entityKinds, ", ")})
		return
	}
	names := []string{}
	switch list := h.cfg.Entities; {
	case list != nil:
		names = append(names, list(kind)...)
	default:
		// The engine's own metadata (host entities, a capture's, a
		// cluster's) when the runner has one.
		if m, ok := h.cfg.Runner.(interface{ Metadata() metadata.Provider }); ok {
			if n, ok := m.Metadata().(interface{ Names(string) []string }); ok {
				names = append(names, n.Names(kind)...)
			}
		}
	}
	sort.Strings(names)
	writeJSON(w, http.StatusOK, map[string]any{"kind": kind, "names": names})
}

// errorBody is the JSON of every error the API answers, and of the error
// frame of a run: a message, and where the script went wrong when it is
// a compile error.
type errorBody struct {
	Message string `json:"message"`
	// Kind is "compile" (a script's mistake: File, Line and Col set when
	// known), "vis", "args", "not_found", "auth", "busy" (the server runs
	// as many queries as it may, or is shutting down), "agents" (an agent
	// did not answer), "canceled" or "" (any other).
	Kind string `json:"kind,omitempty"`
	File string `json:"file,omitempty"`
	Line int    `json:"line,omitempty"`
	Col  int    `json:"col,omitempty"`
	// Variable names the vis variable whose value is wrong (kind
	// "args"), so that the page marks its input.
	Variable string `json:"variable,omitempty"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.Encode(v)
}

func writeError(w http.ResponseWriter, status int, e errorBody) {
	writeJSON(w, status, map[string]errorBody{"error": e})
}

var errNoScript = errors.New(`the request names no script: give "script" (a library name) or "pxl"`)
