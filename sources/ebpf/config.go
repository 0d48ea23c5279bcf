package ebpf

import (
	"net/netip"
	"time"

	"github.com/pxq-dev/pxq/sources/ebpf/protocols"
	"github.com/pxq-dev/pxq/sources/ebpf/protocols/all"
	"github.com/pxq-dev/pxq/types"
)

// Config configures a Tracer. The zero value traces every process but the
// tracer's own with the defaults below.
type Config struct {
	// ASID is the agent short id that goes into UPIDs.
	ASID uint32

	// TraceSelf traces the tracer's own process too (tests do; an agent
	// should not, or it would trace its own gRPC traffic).
	TraceSelf bool
	// SkipPIDs are processes never traced (at most 1024).
	SkipPIDs []uint32
	// OnlyPIDs, if not empty, restricts tracing to these processes (at most
	// 1024). TraceSelf still applies.
	OnlyPIDs []uint32

	// OnConn, when set, is called with the process of every new
	// connection, on the tracer's goroutine: it must not block. The
	// metadata source uses it to record short-lived processes (a curl)
	// while they still exist.
	OnConn func(upid types.UInt128Value)

	// AllClientSides records the client side of every request, also when
	// pxq traces its server, so that a request between two traced
	// processes is two rows (trace_role 1 and 2). By default the client's
	// row is left out then, as Pixie does, except for protocols whose
	// servers are usually elsewhere (DNS). See docs/tables.md.
	AllClientSides bool
	// RemoteTraced, when set, reports whether a remote address belongs to
	// a server that another agent traces (a pod or a service of the
	// cluster): the client side of connections to it is left out as for a
	// server traced on this host.
	RemoteTraced func(netip.Addr) bool

	// DisableTLS turns off the capture of TLS plaintext: the uprobes on
	// OpenSSL's SSL_write and SSL_read (libssl.so and programs that link
	// it statically) and the exec and mmap watching that finds them. See
	// "TLS plaintext" in docs/sources.md.
	DisableTLS bool
	// DisableGoTLS turns off the uprobes on Go's crypto/tls (Go
	// programs' HTTPS and gRPC), leaving OpenSSL's.
	DisableGoTLS bool
	// MaxTLSFiles bounds the files (libraries, programs) the TLS uprobes
	// are attached to (default 256); a uprobe on a file serves every
	// process that maps it.
	MaxTLSFiles int

	// Protocols are the protocols tried on each connection, in order.
	// Default: every protocol of protocols/all (HTTP/1.x, DNS, PostgreSQL,
	// MySQL, Redis).
	Protocols []protocols.Protocol

	// MaxBodyBytes is how much of each message body is kept (default 1024).
	MaxBodyBytes int
	// CopyWholeBodies turns off body skipping: by default the BPF side
	// copies only the first MaxBodyBytes of an HTTP/1.x body with a
	// Content-Length and sends the length of the rest, which the parser
	// would only count (see "Body skipping" in docs/sources.md).
	CopyWholeBodies bool
	// MaxHeaderBytes bounds a message head (default 16 KiB).
	MaxHeaderBytes int
	// MaxPendingRequests bounds unanswered requests per connection (default 64).
	MaxPendingRequests int
	// RequestTimeout drops unanswered requests older than this (default 2 min).
	RequestTimeout time.Duration

	// MaxConns bounds the connections tracked in user space (default 16384).
	MaxConns int
	// IdleTimeout evicts connections with no traffic for this long (default 5 min).
	IdleTimeout time.Duration
	// InferSegments is how many segments of a connection are looked at
	// before its protocol is declared unknown (default 16).
	InferSegments int

	// RingBufferBytes is the size of the BPF ring buffer, a power of two
	// and a multiple of the page size (default 16 MiB). A smaller ring
	// costs a little less per event (it stays in cache), but 4 MiB lost
	// events in the tracer's first, cold second at 37 k rows/s; see
	// docs/performance.md.
	RingBufferBytes uint32
	// PollInterval is how often the ring buffer is read while it fills
	// fast (default 5 ms). Events are written without wakeups, so the
	// tracer polls; when the ring fills slowly it waits longer, as long as
	// the observed rate takes to fill 1/16 of the ring, up to 10
	// PollIntervals and never past the next flush.
	PollInterval time.Duration
	// ReaderNice is the nice value of the thread that reads the ring
	// buffer and parses (default -15; above 19 leaves it as it is). Under
	// CPU contention a thread at the default priority gets its fair share
	// only, and the ring overflows meanwhile; the thread's work is bounded
	// by the traffic, so a high priority takes from the workload only what
	// the tracer would spend anyway, sooner. A negative value needs
	// CAP_SYS_NICE (counted in reader.nice_errors when it fails). See
	// docs/performance.md for what -5 and -15 lost.
	ReaderNice int
	// FlushInterval is how often rows are appended to the store (default
	// 100 ms).
	FlushInterval time.Duration
	// ConnStatsPeriod is how often conn_stats rows are written (default 5 s).
	ConnStatsPeriod time.Duration
	// StatsPeriod is how often counters go to stirling_error and probe
	// states to probe_status (default 10 s).
	StatsPeriod time.Duration
}

func (c Config) withDefaults() Config {
	if c.Protocols == nil {
		c.Protocols = all.Protocols()
	}
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	defd := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&c.MaxBodyBytes, 1024)
	def(&c.MaxHeaderBytes, 16<<10)
	def(&c.MaxPendingRequests, 64)
	def(&c.MaxConns, 16384)
	def(&c.InferSegments, 16)
	def(&c.MaxTLSFiles, 256)
	defd(&c.RequestTimeout, 2*time.Minute)
	defd(&c.IdleTimeout, 5*time.Minute)
	defd(&c.PollInterval, 5*time.Millisecond)
	defd(&c.FlushInterval, 100*time.Millisecond)
	defd(&c.ConnStatsPeriod, 5*time.Second)
	defd(&c.StatsPeriod, 10*time.Second)
	if c.ReaderNice == 0 {
		c.ReaderNice = -15
	}
	if c.RingBufferBytes == 0 {
		c.RingBufferBytes = 16 << 20
	}
	return c
}
