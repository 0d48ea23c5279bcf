package funcs

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/pxq-dev/pxq/types"
)

func TestRequestPathClusters(t *testing.T) {
	var paths []any
	for i := 0; i < 40; i++ {
		paths = append(paths, fmt.Sprintf("/api/users/%d", 1000+i), fmt.Sprintf("/api/users/%d/orders?page=%d", i, i))
	}
	for i := 0; i < 12; i++ {
		paths = append(paths, fmt.Sprintf("/static/file-%c.css", 'a'+i))
	}
	paths = append(paths, "/healthz", "/", "/api/items/3f2b9c1e-8a77-4b1c-9d3e-2c5a6b7d8e9f", "/api/login", "/api/logout")
	arr, err := buildArray(types.String, paths)
	if err != nil {
		t.Fatal(err)
	}
	acc := &pathClusterAcc{}
	acc.Resize(1)
	groups := make([]uint32, len(paths))
	if err := acc.Update(nil, []Value{{Array: arr}}, groups, len(paths)); err != nil {
		t.Fatal(err)
	}
	v, err := acc.Finalize(nil, 1)
	if err != nil {
		t.Fatal(err)
	}
	js := v.Array.(interface{ Value(int) string }).Value(0)
	var c clusters
	if err := json.Unmarshal([]byte(js), &c); err != nil {
		t.Fatal(err)
	}
	want := []string{"/", "/api/items/*", "/api/login", "/api/logout", "/api/users/*", "/api/users/*/orders", "/healthz", "/static/*"}
	if fmt.Sprint(c.Templates) != fmt.Sprint(want) {
		t.Errorf("templates = %v, want %v", c.Templates, want)
	}
	for path, tmpl := range map[string]string{
		"/api/users/77":           "/api/users/*",
		"/api/users/5/orders?x=1": "/api/users/*/orders",
		"/static/new.css":         "/static/*",
		"/api/login":              "/api/login",
		"/other/123":              "/other/*", // fits none: identifiers become *
	} {
		if got := predictCluster(path, js); got != tmpl {
			t.Errorf("predict(%s) = %s, want %s", path, got, tmpl)
		}
	}
	for _, tc := range []struct {
		path, tmpl string
		ok         bool
	}{
		{"/api/users/9", "/api/users/*", true},
		{"/api/users/9?q=1", "/api/users/*", true},
		{"/api/users", "/api/users/*", false},
		{"/api/users/9/orders", "/api/users/*", false},
		{"/api/login", "/api/login", true},
	} {
		if got := matchEndpoint(tc.path, tc.tmpl); got != tc.ok {
			t.Errorf("match(%s, %s) = %v", tc.path, tc.tmpl, got)
		}
	}
	if f := Scalar("_match_endpoint"); f == nil || f.Volatility != Immutable {
		t.Error("_match_endpoint not registered as immutable")
	}
}

// TestNormalizeExecute: executed prepared statements, in the form the
// pgsql and mysql tracers write, normalize to their statement with the
// bound values as params; COM_STMT_EXECUTE (23) is a query command.
func TestNormalizeExecute(t *testing.T) {
	for _, tc := range []struct{ got, want string }{
		{normalizeStatement("query=[SELECT * FROM t WHERE id = $1 AND x = 'a'] params=[42, hello]", true),
			`{"query":"SELECT * FROM t WHERE id = $1 AND x = $3","params":["42","hello","a"],"error":""}`},
		{normalizeStatement("query=[INSERT INTO t VALUES (?)] params=[]", false),
			`{"query":"INSERT INTO t VALUES (?)","params":[],"error":""}`},
		{normalizeStatement("SELECT 1", true), normalizeSQL("SELECT 1", true)},
	} {
		if tc.got != tc.want {
			t.Errorf("got %s\nwant %s", tc.got, tc.want)
		}
	}
	k := Scalar("normalize_mysql").Overloads[0].Kernel
	v, err := k(&Context{}, []Value{{Const: "query=[SELECT ?] params=[1]"}, {Const: int64(23)}}, 1)
	if err != nil || v.Const == `{"query":"","params":[],"error":"not a query command"}` {
		t.Errorf("COM_STMT_EXECUTE not normalized: %v %v", v.Const, err)
	}
}
