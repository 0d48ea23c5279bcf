package proc

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow/go/v15/arrow/array"

	"github.com/pxq-dev/pxq/internal/procfs"
	"github.com/pxq-dev/pxq/table"
	"github.com/pxq-dev/pxq/types"
)

func TestParseStatCommWithSpaces(t *testing.T) {
	line := "42 (a (weird) name) S 1 42 42 0 -1 4194560 100 0 7 0 250 130 0 0 20 0 3 0 12345 1000000 50 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0"
	s, err := procfs.ParseStat([]byte(line))
	if err != nil {
		t.Fatal(err)
	}
	if s.Comm != "a (weird) name" || s.PPID != 1 || s.MinFlt != 100 || s.MajFlt != 7 || s.UTime != 250 || s.STime != 130 ||
		s.Threads != 3 || s.Start != 12345 || s.VSize != 1000000 || s.RSSPages != 50 {
		t.Fatalf("%+v", s)
	}
}

func TestInfoSelf(t *testing.T) {
	info, err := Info(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if info.PID != os.Getpid() || info.PPID != os.Getppid() || info.StartNS == 0 || info.StartNS%TickNS != 0 {
		t.Fatalf("%+v", info)
	}
	if !strings.Contains(info.Cmdline, "proc.test") || info.Comm == "" {
		t.Fatalf("cmdline %q comm %q", info.Cmdline, info.Comm)
	}
	if _, err := os.Stat("/proc/self/cgroup"); err == nil && info.CgroupPath == "" {
		t.Errorf("no cgroup path")
	}
	u, err := UPIDOf(7, os.Getpid())
	if err != nil || u != types.UPID(7, uint32(os.Getpid()), info.StartNS) {
		t.Fatalf("UPIDOf = %v, %v", u, err)
	}
	if _, err := Info(1 << 30); err == nil {
		t.Fatal("no error for a missing pid")
	}
}

func TestCgroupPath(t *testing.T) {
	if got := cgroupPath("0::/kubepods/pod1/abc\n"); got != "/kubepods/pod1/abc" {
		t.Error(got)
	}
	if got := cgroupPath("12:cpu,cpuacct:/docker/x\n1:name=systemd:/docker/x\n"); got != "/docker/x" {
		t.Error(got)
	}
}

func TestParseNetDev(t *testing.T) {
	in := `Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:  1000      10    0    0    0     0          0         0     1000      10    0    0    0     0       0          0
  eth0: 5000      50    1    2    0     0          0         0     7000      70    3    4    0     0       0          0
  eth1:  100       1    0    0    0     0          0         0      200       2    0    0    0     0       0          0
`
	d, err := parseNetDev([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	want := DevStats{RxBytes: 5100, RxPackets: 51, RxErrors: 1, RxDrops: 2, TxBytes: 7200, TxPackets: 72, TxErrors: 3, TxDrops: 4}
	if d != want {
		t.Fatalf("%+v", d)
	}
}

func TestSampler(t *testing.T) {
	store := table.NewStore(0)
	s, err := NewSampler(Config{ASID: 3, Period: 50 * time.Millisecond}, store)
	if err != nil {
		t.Fatal(err)
	}
	s.Start(context.Background())
	time.Sleep(120 * time.Millisecond)
	s.Close()
	self, _ := UPIDOf(3, os.Getpid())
	found := 0
	for _, b := range store.Table("process_stats").Snapshot(0, 0) {
		rec := b.Record
		upids := rec.Column(1).(*array.FixedSizeBinary)
		for i := 0; i < int(rec.NumRows()); i++ {
			if types.GetUInt128(upids.Value(i)) != self {
				continue
			}
			found++
			utime := rec.Column(4).(*array.Int64).Value(i)
			threads := rec.Column(6).(*array.Int64).Value(i)
			rss := rec.Column(8).(*array.Int64).Value(i)
			rchar := rec.Column(9).(*array.Int64).Value(i)
			if threads < 1 || rss <= 0 || utime < 0 || (os.Geteuid() == 0 && rchar <= 0) {
				t.Errorf("row: utime %d threads %d rss %d rchar %d", utime, threads, rss, rchar)
			}
		}
	}
	if found < 2 {
		t.Fatalf("%d samples of this process, want at least 2", found)
	}
	net := store.Table("network_stats")
	if net.Stats().Rows < 2 {
		t.Fatalf("%d network_stats rows", net.Stats().Rows)
	}
	rec := net.Snapshot(0, 0)[0].Record
	if pod := rec.Column(1).(*array.String).Value(0); pod != "" {
		t.Errorf("host pod_id %q", pod)
	}
}
