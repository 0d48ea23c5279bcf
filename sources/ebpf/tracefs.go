package ebpf

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

const tracefsPath = "/sys/kernel/tracing"

// ensureTracefs makes sure that tracefs is mounted, which attaching to
// tracepoints needs. Root mounts it; anyone else gets an error that says
// what is missing and how to grant it.
func ensureTracefs() error {
	for _, p := range []string{tracefsPath, "/sys/kernel/debug/tracing"} {
		if _, err := os.Stat(p + "/events/syscalls"); err == nil {
			return nil
		}
	}
	if os.Geteuid() != 0 {
		return fmt.Errorf("tracefs is not mounted at %s and pxq is not root: "+
			"mount it with `sudo mount -t tracefs nodev %s`, or run pxq as root "+
			"(or with CAP_SYS_ADMIN, CAP_BPF and CAP_PERFMON)", tracefsPath, tracefsPath)
	}
	if err := unix.Mount("nodev", tracefsPath, "tracefs", 0, ""); err != nil && !errors.Is(err, unix.EBUSY) {
		return fmt.Errorf("mount tracefs at %s: %w", tracefsPath, err)
	}
	if _, err := os.Stat(tracefsPath + "/events/syscalls"); err != nil {
		return fmt.Errorf("tracefs mounted at %s but it has no syscall tracepoints "+
			"(kernel built without CONFIG_FTRACE_SYSCALLS?): %w", tracefsPath, err)
	}
	return nil
}
