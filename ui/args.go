package ui

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/pxq-dev/pxq/lang"
)

// checkArgs checks the values a run gives a script's vis variables
// before the script runs, so that a bad value is blamed on its variable
// (errorBody.Variable) rather than on the line of the function it is
// passed to. A variable without a default must be given.
func checkArgs(vis *lang.Vis, args map[string]string) *errorBody {
	if vis == nil {
		return nil
	}
	for _, v := range vis.Variables {
		val, ok := args[v.Name]
		if !ok {
			if v.DefaultValue == nil {
				return &errorBody{Kind: "args", Variable: v.Name, Message: fmt.Sprintf("variable %s has no default: give it a value", v.Name)}
			}
			continue
		}
		if len(v.ValidValues) > 0 && !contains(v.ValidValues, val) {
			return &errorBody{Kind: "args", Variable: v.Name, Message: fmt.Sprintf("%s must be one of %s, not %q", v.Name, strings.Join(v.ValidValues, ", "), val)}
		}
		if msg := badValue(v.Type, val); msg != "" {
			return &errorBody{Kind: "args", Variable: v.Name, Message: v.Name + ": " + msg}
		}
	}
	return nil
}

// badValue says what is wrong with a value of a variable type, or "".
func badValue(typ, val string) string {
	s := strings.TrimSpace(val)
	switch typ {
	case "PX_INT64":
		if _, err := strconv.ParseInt(s, 10, 64); err != nil {
			return fmt.Sprintf("%q is not an integer", val)
		}
	case "PX_FLOAT64":
		if _, err := strconv.ParseFloat(s, 64); err != nil {
			return fmt.Sprintf("%q is not a number", val)
		}
	case "PX_BOOLEAN":
		switch strings.ToLower(s) {
		case "true", "false", "t", "f", "yes", "no", "y", "n", "1", "0":
		default:
			return fmt.Sprintf("%q is not a boolean (true or false)", val)
		}
	}
	return ""
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// argErr matches the compiler's message for an argument it could not
// convert: "argument NAME of FUNC: …".
var argErr = regexp.MustCompile(`^argument (\w+) of (\w+): (.*)$`)

// blameVariable turns a compile error about a function argument into an
// error of the vis variable bound to that argument, when there is one.
func blameVariable(vis *lang.Vis, eb errorBody) errorBody {
	m := argErr.FindStringSubmatch(eb.Message)
	if vis == nil || m == nil {
		return eb
	}
	param, fn, why := m[1], m[2], m[3]
	var specs []lang.FuncSpec
	for _, g := range vis.GlobalFuncs {
		specs = append(specs, g.Func)
	}
	for _, w := range vis.Widgets {
		if w.Func != nil {
			specs = append(specs, *w.Func)
		}
	}
	for _, f := range specs {
		if f.Name != fn {
			continue
		}
		for _, a := range f.Args {
			if a.Name == param && a.Variable != "" {
				return errorBody{Kind: "args", Variable: a.Variable, Message: a.Variable + ": " + why}
			}
		}
	}
	return eb
}

// cliAdvice matches the parts of engine messages that speak to the
// command line (flags and pxq commands), which mean nothing in the page.
var cliAdvice = []*regexp.Regexp{
	regexp.MustCompile(`:? ?pass it with --arg \S+`),
	regexp.MustCompile(` ?\(see ` + "`" + `pxq [^` + "`" + `]*` + "`" + `\)`),
}

// forThePage removes command-line advice from a message.
func forThePage(msg string) string {
	for _, re := range cliAdvice {
		msg = re.ReplaceAllString(msg, "")
	}
	return msg
}
