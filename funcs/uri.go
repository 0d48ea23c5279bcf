package funcs

import (
	"net/url"
	"strconv"
)

// uri_parse and uri_recompose.

func init() {
	register("uri_parse", "the parts of a URI as JSON {scheme, userinfo, host, port, path, query, fragment}",
		sig(tS, fn1(rStr, tS, uriParse), tS))
	register("uri_recompose", "a URI from (scheme, userinfo, host, port, path, query, fragment); port 0 is left out",
		sig(tS, uriRecomposeKernel, tS, tS, tS, tI, tS, tS, tS))
}

type uriParts struct {
	Scheme   string `json:"scheme,omitempty"`
	UserInfo string `json:"userinfo,omitempty"`
	Host     string `json:"host,omitempty"`
	Port     int64  `json:"port,omitempty"`
	Path     string `json:"path,omitempty"`
	Query    string `json:"query,omitempty"`
	Fragment string `json:"fragment,omitempty"`
}

func uriParse(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		b := marshalJSON(map[string]string{"error": err.Error()})
		return string(b)
	}
	p := uriParts{Scheme: u.Scheme, Host: u.Hostname(), Path: u.Path, Query: u.RawQuery, Fragment: u.Fragment}
	if u.User != nil {
		p.UserInfo = u.User.String()
	}
	if port := u.Port(); port != "" {
		p.Port, _ = strconv.ParseInt(port, 10, 64)
	}
	if u.Opaque != "" && p.Path == "" {
		p.Path = u.Opaque
	}
	b := marshalJSON(p)
	return string(b)
}

func uriRecompose(scheme, userinfo, host string, port int64, path, query, fragment string) string {
	var b []byte
	if scheme != "" {
		b = append(b, scheme...)
		b = append(b, ':')
	}
	if host != "" || userinfo != "" || port != 0 {
		b = append(b, "//"...)
		if userinfo != "" {
			b = append(b, userinfo...)
			b = append(b, '@')
		}
		b = append(b, host...)
		if port != 0 {
			b = append(b, ':')
			b = strconv.AppendInt(b, port, 10)
		}
	}
	b = append(b, path...)
	if query != "" {
		b = append(b, '?')
		b = append(b, query...)
	}
	if fragment != "" {
		b = append(b, '#')
		b = append(b, fragment...)
	}
	return string(b)
}

func uriRecomposeKernel(ctx *Context, args []Value, n int) (Value, error) {
	g := make([]getter[string], 7)
	var port getter[int64]
	for i := range args {
		var err error
		if i == 3 {
			port, err = getInt(args[i])
		} else {
			g[i], err = getString(args[i])
		}
		if err != nil {
			return Value{}, err
		}
	}
	row := func(i int) string {
		return uriRecompose(g[0](i), g[1](i), g[2](i), port(i), g[4](i), g[5](i), g[6](i))
	}
	if allConst(args) {
		return Value{Const: row(0)}, nil
	}
	sb := NewStringsBuilder(n, 32)
	for i := 0; i < n; i++ {
		sb.Append(row(i))
	}
	return Value{Array: sb.Finish()}, nil
}
