package lang

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
)

// Vis is a script's vis spec (Pixie's vis.json): the variables a user can
// set, the functions that produce the outputs, and the widgets that show
// them.
type Vis struct {
	Variables   []Variable   `json:"variables,omitempty"`
	GlobalFuncs []GlobalFunc `json:"globalFuncs,omitempty"`
	Widgets     []Widget     `json:"widgets,omitempty"`
}

// Variable is a script argument with its type and default.
type Variable struct {
	Name         string   `json:"name"`
	Type         string   `json:"type"` // PX_STRING, PX_INT64, PX_SERVICE, …
	Description  string   `json:"description,omitempty"`
	DefaultValue *string  `json:"defaultValue,omitempty"`
	ValidValues  []string `json:"validValues,omitempty"`
}

// FuncSpec is a function call of a vis spec: each argument is a constant
// value or the name of a variable.
type FuncSpec struct {
	Name string    `json:"name"`
	Args []FuncArg `json:"args,omitempty"`
}

// FuncArg is one argument of a FuncSpec.
type FuncArg struct {
	Name     string  `json:"name"`
	Value    *string `json:"value,omitempty"`
	Variable string  `json:"variable,omitempty"`
}

// GlobalFunc computes an output that widgets can share.
type GlobalFunc struct {
	OutputName string   `json:"outputName"`
	Func       FuncSpec `json:"func"`
}

// Widget shows one output.
type Widget struct {
	Name                 string          `json:"name,omitempty"`
	Position             *Position       `json:"position,omitempty"`
	Func                 *FuncSpec       `json:"func,omitempty"`
	GlobalFuncOutputName string          `json:"globalFuncOutputName,omitempty"`
	DisplaySpec          json.RawMessage `json:"displaySpec,omitempty"`
}

// Position places a widget on a 12-column grid.
type Position struct {
	X int `json:"x"`
	Y int `json:"y"`
	W int `json:"w"`
	H int `json:"h"`
}

// ParseVis parses a vis.json document.
func ParseVis(data []byte) (*Vis, error) {
	var v Vis
	dec := json.NewDecoder(strings.NewReader(string(data)))
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("vis spec: %w", err)
	}
	for i, w := range v.Widgets {
		if w.Func == nil && w.GlobalFuncOutputName == "" {
			return nil, fmt.Errorf("vis spec: widget %d (%q) has neither func nor globalFuncOutputName", i, w.Name)
		}
	}
	return &v, nil
}

// WidgetOutput returns the name of the output table a widget shows.
func (v *Vis) WidgetOutput(i int) string {
	w := v.Widgets[i]
	if w.GlobalFuncOutputName != "" {
		return w.GlobalFuncOutputName
	}
	if w.Name != "" {
		return w.Name
	}
	return fmt.Sprintf("widget_%d", i)
}

// Values returns every variable's value: the user's where given, else the
// default. It fails on an argument that is not a variable and on a
// variable that has neither.
func (v *Vis) Values(args map[string]string) (map[string]string, error) {
	vals := map[string]string{}
	known := map[string]bool{}
	var names []string
	for _, x := range v.Variables {
		known[x.Name] = true
		names = append(names, x.Name)
		if a, ok := args[x.Name]; ok {
			vals[x.Name] = a
		} else if x.DefaultValue != nil {
			vals[x.Name] = *x.DefaultValue
		}
	}
	var unknown []string
	for a := range args {
		if !known[a] {
			unknown = append(unknown, a)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return nil, fmt.Errorf("unknown argument %q%s; the script's variables are: %s", unknown[0], didYouMean(unknown[0], names), strings.Join(names, ", "))
	}
	for _, x := range v.Variables {
		if _, ok := vals[x.Name]; !ok {
			return nil, fmt.Errorf("variable %s has no default: pass it with --arg %s=VALUE", x.Name, x.Name)
		}
		if len(x.ValidValues) > 0 && !contains(x.ValidValues, vals[x.Name]) {
			return nil, fmt.Errorf("variable %s must be one of %s, got %q", x.Name, strings.Join(x.ValidValues, ", "), vals[x.Name])
		}
	}
	return vals, nil
}

// Calls returns the function calls that produce the vis spec's outputs:
// one per global func and one per widget with its own func.
func (v *Vis) Calls(args map[string]string) ([]FuncCall, error) {
	vals, err := v.Values(args)
	if err != nil {
		return nil, err
	}
	bind := func(f FuncSpec) (map[string]string, error) {
		out := map[string]string{}
		for _, a := range f.Args {
			switch {
			case a.Variable != "":
				val, ok := vals[a.Variable]
				if !ok {
					return nil, fmt.Errorf("vis spec: function %s argument %s refers to unknown variable %q", f.Name, a.Name, a.Variable)
				}
				out[a.Name] = val
			case a.Value != nil:
				out[a.Name] = *a.Value
			}
		}
		return out, nil
	}
	var calls []FuncCall
	for _, g := range v.GlobalFuncs {
		a, err := bind(g.Func)
		if err != nil {
			return nil, err
		}
		calls = append(calls, FuncCall{Func: g.Func.Name, Args: a, Output: g.OutputName})
	}
	for i, w := range v.Widgets {
		if w.Func == nil {
			continue
		}
		a, err := bind(*w.Func)
		if err != nil {
			return nil, err
		}
		calls = append(calls, FuncCall{Func: w.Func.Name, Args: a, Output: v.WidgetOutput(i)})
	}
	return calls, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
