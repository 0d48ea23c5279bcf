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
}

// Handler returns the UI: the page at /, its assets at /assets/, and the
// API under /api/.
func Handler(cfg Config) http.Handler {
	if cfg.MaxBody == 0 {
		cfg.MaxBody = 1 << 20
	}
	h := &handler{cfg: cfg}
	static, err := fs.Sub(dist, "dist")
	if err != nil {
		panic(err) // dist is embedded: cannot happen
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/scripts", h.auth(h.listScripts))
	mux.HandleFunc("GET /api/scripts/{name...}", h.auth(h.getScript))
	mux.HandleFunc("POST /api/run", h.auth(h.run))
	mux.HandleFunc("GET /api/entities", h.auth(h.entities))
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
	cfg Config
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
}

func (h *handler) listScripts(w http.ResponseWriter, r *http.Request) {
	all, err := h.cfg.Library.List()
	if err != nil {
		writeError(w, http.StatusInternalServerError, errorBody{Message: err.Error()})
		return
	}
	out := make([]scriptInfo, 0, len(all))
	for _, s := range all {
		out = append(out, scriptInfo{Name: s.Name, Short: s.Short, Source: s.Source})
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
}

type manifest struct {
	Short string `json:"short"`
	Long  string `json:"long"`
}

func (h *handler) getScript(w http.ResponseWriter, r *http.Request) {
	s, err := h.cfg.Library.Get(r.PathValue("name"))
	if err != nil {
		writeError(w, http.StatusNotFound, errorBody{Message: err.Error()})
		return
	}
	d := scriptDetail{Name: s.Name, Source: s.Source, PXL: string(s.PXL), Manifest: manifest{s.Short, s.Long}}
	if len(s.VisRaw) > 0 && json.Valid(s.VisRaw) {
		d.Vis = s.VisRaw
	} else {
		d.Vis = json.RawMessage("null")
	}
	writeJSON(w, http.StatusOK, d)
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
	if h.cfg.Entities != nil {
		names = append(names, h.cfg.Entities(kind)...)
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
