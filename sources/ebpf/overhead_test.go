package ebpf_test

import (
	"io"
	"net"
	"os"
	"testing"
	"time"

	cebpf "github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"

	"github.com/pxq-dev/pxq/internal/testenv"
	"github.com/pxq-dev/pxq/sources/ebpf"
	"github.com/pxq-dev/pxq/table"
)

// BenchmarkSyscallOverhead is what the tracer costs a process per syscall
// that is not on a socket: every syscall on the node passes its sys_exit
// program. For a process it does not trace, and for one it does (by
// default every process is traced). Each case runs with the programs detached (Pause) and attached,
// in the same run; compare the two. A third case adds an empty program on
// syscalls:sys_enter_close, as the tracer had before it handled close at
// exit: any program on a sys_enter tracepoint puts every syscall through
// the entry tracepoint too.
//
//	go test -run XXX -bench SyscallOverhead ./sources/ebpf/
func BenchmarkSyscallOverhead(b *testing.B) {
	testenv.RequireRoot(b, "load BPF programs")
	for _, traced := range []bool{false, true} {
		name := "untraced"
		// Untraced: the tracer traces only pid 1. Traced: the default
		// configuration, every process (this one included).
		cfg := ebpf.Config{OnlyPIDs: []uint32{1}}
		if traced {
			name = "traced"
			cfg = ebpf.Config{TraceSelf: true}
		}
		b.Run(name, func(b *testing.B) { syscallOverhead(b, cfg) })
	}
}

func syscallOverhead(b *testing.B, cfg ebpf.Config) {
	tr, err := ebpf.New(cfg, table.NewStore(0))
	if err != nil {
		testenv.SkipOrFailf(b, "cannot load the tracer here: %v", err)
	}
	defer tr.Close()
	tr.Start(b.Context())
	devZero, err := os.Open("/dev/zero")
	if err != nil {
		b.Fatal(err)
	}
	defer devZero.Close()
	buf := make([]byte, 64)
	calls := []struct {
		name string
		f    func()
	}{
		// A syscall the program returns from after reading its number.
		{"getppid", func() { unix.Getppid() }},
		// One it looks at: a read that returned bytes, not on a socket.
		{"read", func() { unix.Read(int(devZero.Fd()), buf) }},
	}
	enter, err := cebpf.NewProgram(&cebpf.ProgramSpec{
		Type:         cebpf.TracePoint,
		License:      "GPL",
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, 0), asm.Return()},
	})
	if err != nil {
		b.Fatal(err)
	}
	defer enter.Close()
	for _, c := range calls {
		for _, mode := range []string{"detached", "attached", "attached+enter_close"} {
			var l link.Link
			switch mode {
			case "detached":
				tr.Pause()
			case "attached":
				if err := tr.Resume(); err != nil {
					b.Fatal(err)
				}
			default:
				if l, err = link.Tracepoint("syscalls", "sys_enter_close", enter, nil); err != nil {
					b.Fatal(err)
				}
			}
			b.Run(c.name+"/"+mode, func(b *testing.B) {
				for b.Loop() {
					c.f()
				}
			})
			if l != nil {
				l.Close()
			}
		}
	}
}

// BenchmarkTracedWrite is what a traced process pays per write of 512
// bytes on a TCP connection on loopback: the BPF program copies the bytes
// into the ring (the tracer's user space reads them on another thread).
// Detached and attached in the same run, and attached with the TLS
// capture off (DisableTLS): with it on, the program looks up the thread's
// SSL call in progress on every socket read and write. bpf-ns/op is the
// BPF programs' run time per write (kernel statistics, on for the run).
func BenchmarkTracedWrite(b *testing.B) {
	testenv.RequireRoot(b, "load BPF programs")
	if st, err := cebpf.EnableStats(uint32(unix.BPF_STATS_RUN_TIME)); err == nil {
		defer st.Close()
	}
	newTracer := func(cfg ebpf.Config) *ebpf.Tracer {
		cfg.TraceSelf, cfg.OnlyPIDs = true, []uint32{uint32(os.Getpid())}
		tr, err := ebpf.New(cfg, table.NewStore(64<<20))
		if err != nil {
			testenv.SkipOrFailf(b, "cannot load the tracer here: %v", err)
		}
		tr.Start(b.Context())
		tr.Pause()
		return tr
	}
	tr := newTracer(ebpf.Config{})
	defer tr.Close()
	noTLS := newTracer(ebpf.Config{DisableTLS: true})
	defer noTLS.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go io.Copy(io.Discard, c)
		}
	}()
	msg := make([]byte, 512)
	for _, c := range []struct {
		name string
		tr   *ebpf.Tracer
	}{{"detached", nil}, {"attached", tr}, {"attached-notls", noTLS}} {
		if c.tr != nil {
			if err := c.tr.Resume(); err != nil {
				b.Fatal(err)
			}
		}
		// A connection per case, opened after Resume, so that the
		// tracer knows it from its connect.
		conn, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			b.Fatal(err)
		}
		b.Run(c.name, func(b *testing.B) {
			var rt0 time.Duration
			if c.tr != nil {
				rt0, _ = c.tr.ProgramStats()
			}
			for b.Loop() {
				if _, err := conn.Write(msg); err != nil {
					b.Fatal(err)
				}
			}
			if c.tr != nil {
				rt, _ := c.tr.ProgramStats()
				b.ReportMetric(float64(rt-rt0)/float64(b.N), "bpf-ns/op")
			}
		})
		conn.Close()
		if c.tr != nil {
			c.tr.Pause()
		}
	}
	b.Logf("tracer: %d events, %d lost", tr.Stats().Events, tr.Stats().LostEvents)
}
