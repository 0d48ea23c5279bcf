package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/pxq-dev/pxq/internal/procfs"
	"github.com/pxq-dev/pxq/metadata"
	"github.com/pxq-dev/pxq/sources/profiler"
)

var profileF struct {
	pod        string
	duration   time.Duration
	out        string
	hz         int
	kubeconfig string
}

var profileCmd = &cobra.Command{
	Use:   "profile PID | --pod NAMESPACE/NAME",
	Short: "Profile a process's or a pod's CPU into a pprof file",
	Long: `profile samples the stacks of one process (PID) or of every process of a
pod (--pod) with the CPU profiler's BPF program for --duration, and writes
a pprof profile that ` + "`go tool pprof`" + ` opens. Frames are named already:
kernel ones from /proc/kallsyms (marked [k]), user ones from the mapped
files' symbols, [module+0xoffset] where there are none. Ctrl-C stops early
and writes what was sampled.`,
	Example: "  sudo pxq profile 1234 --duration 30s -o cpu.pprof\n  sudo pxq profile --pod default/checkout-7d9f -o checkout.pprof\n  go tool pprof -top cpu.pprof",
	Args:    cobra.MaximumNArgs(1),
	RunE:    runProfile,
}

func init() {
	f := profileCmd.Flags()
	f.StringVar(&profileF.pod, "pod", "", "profile every process of this pod (namespace/name or UID)")
	f.DurationVar(&profileF.duration, "duration", 30*time.Second, "how long to sample")
	f.StringVarP(&profileF.out, "output", "o", "", "the pprof file to write (required)")
	f.IntVar(&profileF.hz, "hz", 100, "samples per second per CPU")
	kubeconfigFlag(profileCmd, &profileF.kubeconfig)
	rootCmd.AddCommand(profileCmd)
}

func runProfile(c *cobra.Command, args []string) error {
	if (len(args) == 1) == (profileF.pod != "") {
		return usagef("give a PID or --pod, one of them")
	}
	if profileF.out == "" {
		return usagef("-o FILE is required")
	}
	if profileF.duration <= 0 || profileF.hz <= 0 {
		return usagef("--duration and --hz must be positive")
	}
	keep, err := profileTarget(c, args)
	if err != nil {
		return err
	}
	out, err := os.Create(profileF.out)
	if err != nil {
		return err
	}
	defer out.Close()
	p, err := profiler.New(profiler.Config{Frequency: profileF.hz, Keep: keep})
	if err != nil {
		return err
	}
	defer p.Close()

	ctx, cancel := signal.NotifyContext(c.Context(), os.Interrupt)
	defer cancel()
	ctx, stop := context.WithTimeout(ctx, profileF.duration)
	defer stop()
	start := time.Now()
	var samples []profiler.Sample
	// Drain every few seconds rather than once: fewer stacks wait in the
	// BPF maps at a time, so fewer are lost to hash collisions.
	tk := time.NewTicker(2 * time.Second)
	defer tk.Stop()
	for done := false; !done; {
		select {
		case <-ctx.Done():
			done = true
		case <-tk.C:
		}
		got, err := p.Drain()
		if err != nil {
			return err
		}
		samples = append(samples, got...)
	}
	end := time.Now()
	if err := profiler.WritePprof(out, samples, profileF.hz, end, end.Sub(start)); err != nil {
		return err
	}
	if err := out.Close(); err != nil {
		return err
	}
	var n uint64
	for _, s := range samples {
		n += s.Count
	}
	fmt.Fprintf(c.ErrOrStderr(), "pxq: %d samples over %s written to %s\n", n, end.Sub(start).Round(time.Millisecond), profileF.out)
	return nil
}

// profileTarget returns the filter of the processes to keep: the PID, or
// the processes whose cgroup is the pod's.
func profileTarget(c *cobra.Command, args []string) (func(pid uint32) bool, error) {
	if len(args) == 1 {
		pid, err := strconv.Atoi(args[0])
		if err != nil || pid <= 0 {
			return nil, usagef("%q is not a PID", args[0])
		}
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err != nil {
			return nil, fmt.Errorf("no process %d", pid)
		}
		return func(p uint32) bool { return p == uint32(pid) }, nil
	}
	m, err := openMetadata(c.Context(), lineLog(c.ErrOrStderr()), profileF.kubeconfig, "", syncWait)
	if err != nil {
		return nil, err
	}
	defer m.Close()
	pod := m.PodByName(profileF.pod)
	if pod == nil {
		pod = m.Pod(profileF.pod)
	}
	if pod == nil {
		return nil, fmt.Errorf("no pod %q on this cluster (give namespace/name or the UID)", profileF.pod)
	}
	uid := pod.UID
	// A process stays in its pod: each pid is read once.
	seen := map[uint32]bool{}
	return func(pid uint32) bool {
		in, ok := seen[pid]
		if !ok {
			cg, err := procfs.Cgroup("/proc", int(pid))
			in = err == nil && metadata.ParseProcCgroup(cg).PodUID == uid
			seen[pid] = in
		}
		return in
	}, nil
}
