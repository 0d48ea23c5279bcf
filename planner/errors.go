package planner

import "fmt"

// errorf builds a planner error; every planner error starts with
// "planner: " so that callers can tell where it came from.
func errorf(format string, args ...any) error {
	return fmt.Errorf("planner: "+format, args...)
}
