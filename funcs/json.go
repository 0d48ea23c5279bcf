package funcs

import (
	"encoding/json"
	"strconv"
	"strings"
)

// JSON functions. pluck and friends read a top-level field of a JSON
// object with a small scanner over the text (no decoding of the rest), so
// that reading p99 out of a quantiles string costs no allocation.

func init() {
	register("pluck", "the value at key of a JSON object: strings unquoted, other values as JSON text; \"\" if missing",
		sig(tS, fn2(rStr, rStr, tS, pluck), tS, tS))
	register("pluck_int64", "the value at key of a JSON object as an int64 (0 if missing or not a number)",
		sig(tI, fn2(rStr, rStr, tI, func(j, k string) int64 {
			raw, _ := jsonField(j, k)
			if v, err := strconv.ParseInt(unquoteNumber(raw), 10, 64); err == nil {
				return v
			}
			if f, err := strconv.ParseFloat(unquoteNumber(raw), 64); err == nil {
				return int64(f)
			}
			return 0
		}), tS, tS))
	register("pluck_float64", "the value at key of a JSON object as a float64 (0 if missing or not a number)",
		sig(tF, fn2(rStr, rStr, tF, func(j, k string) float64 {
			raw, _ := jsonField(j, k)
			f, err := strconv.ParseFloat(unquoteNumber(raw), 64)
			if err != nil {
				return 0
			}
			return f
		}), tS, tS))
	register("pluck_array", "element i of a JSON array, as pluck returns values; \"\" if out of range",
		sig(tS, fn2(rStr, rInt, tS, pluckArray), tS, tI))
	register("has_value", "whether a JSON array (or a plain string) holds value",
		sig(tB, fn2(rStr, rStr, tB, hasValue), tS, tS))
	register("has_service_name", "whether a service field (a name or a JSON list of names) holds name",
		sig(tB, fn2(rStr, rStr, tB, hasValue), tS, tS))
	register("has_service_id", "whether a service id field (an id or a JSON list of ids) holds id",
		sig(tB, fn2(rStr, rStr, tB, hasValue), tS, tS))
}

func pluck(j, k string) string {
	raw, ok := jsonField(j, k)
	if !ok {
		return ""
	}
	return jsonText(raw)
}

// jsonText turns a raw JSON value into what pluck returns.
func jsonText(raw string) string {
	if len(raw) > 0 && raw[0] == '"' {
		if !strings.ContainsRune(raw, '\\') {
			return raw[1 : len(raw)-1]
		}
		var s string
		if json.Unmarshal([]byte(raw), &s) == nil {
			return s
		}
		return raw[1 : len(raw)-1]
	}
	if raw == "null" {
		return ""
	}
	return raw
}

func unquoteNumber(raw string) string {
	if len(raw) >= 2 && raw[0] == '"' {
		return raw[1 : len(raw)-1]
	}
	return raw
}

func pluckArray(j string, i int64) string {
	p := skipWS(j, 0)
	if p >= len(j) || j[p] != '[' || i < 0 {
		return ""
	}
	p = skipWS(j, p+1)
	for k := int64(0); p < len(j) && j[p] != ']'; k++ {
		end, ok := skipValue(j, p)
		if !ok {
			return ""
		}
		if k == i {
			return jsonText(j[p:end])
		}
		p = skipWS(j, end)
		if p < len(j) && j[p] == ',' {
			p = skipWS(j, p+1)
		}
	}
	return ""
}

func hasValue(list, v string) bool {
	p := skipWS(list, 0)
	if p >= len(list) || list[p] != '[' {
		return list == v
	}
	var vals []any
	if json.Unmarshal([]byte(list), &vals) != nil {
		return false
	}
	for _, x := range vals {
		if s, ok := x.(string); ok && s == v {
			return true
		}
	}
	return false
}

// jsonField returns the raw text of the value at key of the JSON object
// j, and whether it was found.
func jsonField(j, key string) (string, bool) {
	p := skipWS(j, 0)
	if p >= len(j) || j[p] != '{' {
		return "", false
	}
	p = skipWS(j, p+1)
	for p < len(j) && j[p] == '"' {
		kEnd, ok := skipString(j, p)
		if !ok {
			return "", false
		}
		k := j[p+1 : kEnd-1]
		p = skipWS(j, kEnd)
		if p >= len(j) || j[p] != ':' {
			return "", false
		}
		p = skipWS(j, p+1)
		vEnd, ok := skipValue(j, p)
		if !ok {
			return "", false
		}
		if k == key || (strings.IndexByte(k, '\\') >= 0 && unescapeKey(k) == key) {
			return j[p:vEnd], true
		}
		p = skipWS(j, vEnd)
		if p < len(j) && j[p] == ',' {
			p = skipWS(j, p+1)
		}
	}
	return "", false
}

func unescapeKey(k string) string {
	var s string
	if json.Unmarshal([]byte(`"`+k+`"`), &s) != nil {
		return k
	}
	return s
}

func skipWS(s string, p int) int {
	for p < len(s) && (s[p] == ' ' || s[p] == '\t' || s[p] == '\n' || s[p] == '\r') {
		p++
	}
	return p
}

// skipString returns the position after the string starting at s[p]=='"'.
func skipString(s string, p int) (int, bool) {
	for i := p + 1; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case '"':
			return i + 1, true
		}
	}
	return 0, false
}

// skipValue returns the position after the JSON value starting at p.
func skipValue(s string, p int) (int, bool) {
	if p >= len(s) {
		return 0, false
	}
	switch s[p] {
	case '"':
		return skipString(s, p)
	case '{', '[':
		depth := 0
		for i := p; i < len(s); i++ {
			switch s[i] {
			case '"':
				e, ok := skipString(s, i)
				if !ok {
					return 0, false
				}
				i = e - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1, true
				}
			}
		}
		return 0, false
	}
	i := p
	for i < len(s) && s[i] != ',' && s[i] != '}' && s[i] != ']' && s[i] != ' ' && s[i] != '\n' && s[i] != '\t' && s[i] != '\r' {
		i++
	}
	return i, i > p
}
