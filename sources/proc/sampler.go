package proc

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pxq-dev/pxq/table"
	"github.com/pxq-dev/pxq/types"
)

// Config configures a Sampler.
type Config struct {
	// ASID is the agent short id that goes into UPIDs.
	ASID uint32
	// Period is how often every process is sampled (default 10 s).
	Period time.Duration
	// PodOfNetNS names the pod whose network namespace is netns (the inode
	// number of /proc/PID/ns/net), with pid one of its processes. With a
	// nil resolver, or one that returns "", only the host's namespace is
	// reported, with an empty pod_id.
	PodOfNetNS func(pid int, netns uint64) string
}

// Sampler writes process_stats and network_stats rows.
type Sampler struct {
	cfg     Config
	proc    *table.Writer
	net     *table.Writer
	hostNS  uint64
	pageSz  int64
	cancel  context.CancelFunc
	done    chan struct{}
	once    sync.Once
	closeMu sync.Once
}

// NewSampler creates the sampler's tables in store.
func NewSampler(cfg Config, store *table.Store) (*Sampler, error) {
	if cfg.Period <= 0 {
		cfg.Period = 10 * time.Second
	}
	s := &Sampler{cfg: cfg, pageSz: int64(os.Getpagesize()), done: make(chan struct{})}
	var err error
	if s.proc, err = ProcessStats.Create(store); err != nil {
		return nil, fmt.Errorf("proc: %w", err)
	}
	if s.net, err = NetworkStats.Create(store); err != nil {
		return nil, fmt.Errorf("proc: %w", err)
	}
	// The host's namespace is pid 1's; where pid 1 cannot be read (a
	// sandbox), take our own.
	if s.hostNS, err = NetNS(1); err != nil {
		s.hostNS, _ = NetNS(os.Getpid())
	}
	return s, nil
}

// Start samples now and then every Period until ctx is done or Close.
func (s *Sampler) Start(ctx context.Context) {
	s.once.Do(func() {
		ctx, s.cancel = context.WithCancel(ctx)
		go func() {
			defer close(s.done)
			tk := time.NewTicker(s.cfg.Period)
			defer tk.Stop()
			for {
				s.Sample(time.Now())
				select {
				case <-ctx.Done():
					return
				case <-tk.C:
				}
			}
		}()
	})
}

// Close stops sampling.
func (s *Sampler) Close() error {
	s.closeMu.Do(func() {
		if s.cancel != nil {
			s.cancel()
			<-s.done
		}
	})
	return nil
}

// Sample writes one row per process and one per network namespace, and
// flushes them to the store. Processes that vanish meanwhile are skipped.
func (s *Sampler) Sample(now time.Time) error {
	pids, err := PIDs()
	if err != nil {
		return err
	}
	ts := now.UnixNano()
	seenNS := map[uint64]bool{}
	for _, pid := range pids {
		st, err := readStat(pid)
		if err != nil {
			continue
		}
		io := readIO(pid)
		r, c := s.proc.Row(), &procCols
		c.Time.Set(r, ts)
		c.UPID.Set(r, types.UPID(s.cfg.ASID, uint32(pid), st.StartNS()))
		c.MajorFaults.Set(r, st.MajFlt)
		c.MinorFaults.Set(r, st.MinFlt)
		c.CPUUTimeNS.Set(r, st.UTime*TickNS)
		c.CPUKTimeNS.Set(r, st.STime*TickNS)
		c.NumThreads.Set(r, st.Threads)
		c.VSizeBytes.Set(r, st.VSize)
		c.RSSBytes.Set(r, st.RSSPages*s.pageSz)
		c.RCharBytes.Set(r, io["rchar"])
		c.WCharBytes.Set(r, io["wchar"])
		c.ReadBytes.Set(r, io["read_bytes"])
		c.WriteBytes.Set(r, io["write_bytes"])
		if err := r.End(); err != nil {
			return err
		}

		ns, err := NetNS(pid)
		if err != nil || seenNS[ns] {
			continue
		}
		seenNS[ns] = true
		pod := ""
		if ns != s.hostNS {
			if s.cfg.PodOfNetNS == nil {
				continue
			}
			if pod = s.cfg.PodOfNetNS(pid, ns); pod == "" {
				continue
			}
		}
		dev, err := NetDev(pid)
		if err != nil {
			continue
		}
		nr, nc := s.net.Row(), &netCols
		nc.Time.Set(nr, ts)
		nc.PodID.Set(nr, pod)
		nc.RxBytes.Set(nr, dev.RxBytes)
		nc.RxPackets.Set(nr, dev.RxPackets)
		nc.RxErrors.Set(nr, dev.RxErrors)
		nc.RxDrops.Set(nr, dev.RxDrops)
		nc.TxBytes.Set(nr, dev.TxBytes)
		nc.TxPackets.Set(nr, dev.TxPackets)
		nc.TxErrors.Set(nr, dev.TxErrors)
		nc.TxDrops.Set(nr, dev.TxDrops)
		if err := nr.End(); err != nil {
			return err
		}
	}
	if err := s.proc.Flush(); err != nil {
		return err
	}
	return s.net.Flush()
}

// readIO reads /proc/PID/io (absent without ptrace rights: zeros).
func readIO(pid int) map[string]int64 {
	out := map[string]int64{}
	b, err := os.ReadFile(fmt.Sprintf("%s/%d/io", Root, pid))
	if err != nil {
		return out
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		out[k] = n
	}
	return out
}

// NetNS returns the inode number of pid's network namespace.
func NetNS(pid int) (uint64, error) {
	l, err := os.Readlink(fmt.Sprintf("%s/%d/ns/net", Root, pid))
	if err != nil {
		return 0, err
	}
	// "net:[4026531840]"
	i, j := strings.IndexByte(l, '['), strings.IndexByte(l, ']')
	if i < 0 || j < i {
		return 0, fmt.Errorf("proc: unexpected netns link %q", l)
	}
	return strconv.ParseUint(l[i+1:j], 10, 64)
}

// DevStats are interface counters summed over a namespace's interfaces.
type DevStats struct {
	RxBytes, RxPackets, RxErrors, RxDrops int64
	TxBytes, TxPackets, TxErrors, TxDrops int64
}

// NetDev sums /proc/PID/net/dev over the interfaces of pid's network
// namespace, leaving out loopback (traffic that never leaves the
// namespace).
func NetDev(pid int) (DevStats, error) {
	b, err := os.ReadFile(fmt.Sprintf("%s/%d/net/dev", Root, pid))
	if err != nil {
		return DevStats{}, err
	}
	return parseNetDev(b)
}

func parseNetDev(b []byte) (DevStats, error) {
	var d DevStats
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		if strings.TrimSpace(name) == "lo" {
			continue
		}
		f := strings.Fields(rest)
		if len(f) < 16 {
			return d, fmt.Errorf("proc: short net/dev line %q", sc.Text())
		}
		n := func(i int) int64 { v, _ := strconv.ParseInt(f[i], 10, 64); return v }
		d.RxBytes += n(0)
		d.RxPackets += n(1)
		d.RxErrors += n(2)
		d.RxDrops += n(3)
		d.TxBytes += n(8)
		d.TxPackets += n(9)
		d.TxErrors += n(10)
		d.TxDrops += n(11)
	}
	return d, sc.Err()
}
