package tls

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"

	"github.com/pxq-dev/pxq/sources/ebpf/bpf"
)

// Programs are the BPF programs a Prober attaches. Where the kernel has
// uprobe_multi links (Linux 6.6), a file's functions are two links: Multi
// at their entries, told apart by their cookies (Cookies), and
// MultiReturn at their returns. Otherwise each function is two perf
// events: Entry's program for it, and Return.
type Programs struct {
	Multi, MultiReturn *ebpf.Program // nil without uprobe_multi

	Entry  map[string]*ebpf.Program // by function (Funcs)
	Return *ebpf.Program

	// GoEnter and GoReturn are the Go crypto/tls probes' programs (at
	// the entries and at every RET of GoFuncs), nil when GoErr says
	// why they could not be loaded.
	GoEnter, GoReturn *ebpf.Program
	GoErr             error
	// GoEnterMulti and GoReturnMulti are the same as uprobe_multi
	// programs (nil without uprobe_multi): a file's Go probes are then
	// two links, whose removal takes one grace period each.
	GoEnterMulti, GoReturnMulti *ebpf.Program
}

// The Go probes' function kinds: the BPF side's enum go_kind.
var goKinds = map[string]uint8{
	GoFuncWrite:     uint8(bpf.GoTLSGoKindGO_WRITE),
	GoFuncRead:      uint8(bpf.GoTLSGoKindGO_READ),
	GoFuncHandshake: uint8(bpf.GoTLSGoKindGO_HANDSHAKE),
}

// Cookies are the cookies of the functions' addresses in a uprobe_multi
// link: the BPF side's enum ssl_kind.
var Cookies = map[string]uint64{
	FuncWrite:     uint64(bpf.TraceSslKindSSL_WRITE),
	FuncWriteEx:   uint64(bpf.TraceSslKindSSL_WRITE_EX),
	FuncRead:      uint64(bpf.TraceSslKindSSL_READ),
	FuncReadEx:    uint64(bpf.TraceSslKindSSL_READ_EX),
	FuncHandshake: uint64(bpf.TraceSslKindSSL_HANDSHAKE),
}

// Config configures a Prober.
type Config struct {
	Programs Programs
	// MaxFiles bounds the files probed (default 256): past it, a file
	// with SSL functions is reported, not probed.
	MaxFiles int
}

// Stats are a Prober's counters.
type Stats struct {
	Processes     uint64 // processes examined
	ProcessesGone uint64 // processes that exited before they could be examined
	FilesExamined uint64 // distinct executable files looked at
	FilesProbed   uint64 // files with SSL functions, probes attached
	FilesFailed   uint64 // files with SSL functions (or named libssl) not probed: see Files
	FilesOverMax  uint64 // files not probed because MaxFiles were
	ELFErrors     uint64 // executable mappings that could not be read as ELF
	GoFiles       uint64 // Go programs with crypto/tls among the files examined
	GoFilesProbed uint64 // of those, the ones with probes attached
}

// fileState is a file with SSL functions, or named like libssl without them.
type fileState struct {
	Key   FileKey
	Path  string            // as the process it was found in named it
	Funcs map[string]uint64 // file offsets of the probed functions it defines
	// Probes are where its probes are set (Placement).
	Probes []Probe
	Go     *GoBinary // a Go program with crypto/tls: its Go probes
	// Err says why the file is not probed (nil when it is).
	Err error

	// The file is held open so that its probes can be attached again
	// (Attach after Detach) once the process that named it has exited:
	// they are attached through /proc/self/fd/N.
	f        *os.File
	links    []link.Link
	attached bool // its probes have been set once (FilesProbed counts it)
}

// Status is a probed file's state for probe_status.
type Status struct {
	Name string // "uprobe:" and the file's path
	Err  error
	Info string // JSON: kind, functions
}

// Prober attaches the TLS uprobes to the files that need them. It is safe
// for concurrent use.
type Prober struct {
	cfg Config

	mu       sync.Mutex
	files    map[FileKey]*fileState
	other    map[FileKey]struct{} // examined: no SSL functions
	probed   int                  // files in files with probes (or to be attached again)
	detached bool
	closed   bool
	stats    Stats
}

// maxOther bounds the files remembered as having no SSL functions; past
// it the set starts again (and files are examined again when mapped).
const maxOther = 1 << 16

// New returns a Prober.
func New(cfg Config) *Prober {
	if cfg.MaxFiles <= 0 {
		cfg.MaxFiles = 256
	}
	return &Prober{cfg: cfg, files: map[FileKey]*fileState{}, other: map[FileKey]struct{}{}}
}

// errGone says that a process exited before it could be examined.
var errGone = errors.New("process exited")

// Process examines the executable mappings of process pid, probing the
// files among them that define SSL functions. It fails only when the
// process could not be read (it exited): its files may then be examined
// when another process maps them.
func (p *Prober) Process(pid uint32) error {
	return p.process(pid, FileKey{})
}

// process is Process, examining the mapping of the file first before the
// others: the file the BPF side reported, whose probes are the most
// urgent.
func (p *Prober) process(pid uint32, first FileKey) error {
	maps, err := Mappings(pid)
	if err != nil {
		p.mu.Lock()
		p.stats.ProcessesGone++
		p.mu.Unlock()
		return fmt.Errorf("tls: process %d: %w", pid, errGone)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil
	}
	p.stats.Processes++
	if i := slices.IndexFunc(maps, func(m Mapping) bool { return m.Key == first }); i > 0 {
		maps[0], maps[i] = maps[i], maps[0]
	}
	for _, m := range maps {
		if p.known(m.Key) {
			continue
		}
		// The mapped file itself, then the path in the process's
		// mount namespace.
		f, err := os.Open(m.MapFile(pid))
		if err != nil {
			f, err = os.Open(fmt.Sprintf("/proc/%d/root%s", pid, m.Path))
		}
		if err != nil {
			p.stats.ProcessesGone++
			return fmt.Errorf("tls: process %d: open %s: %w", pid, m.Path, errGone)
		}
		p.examine(m.Key, m.Path, f)
	}
	return nil
}

// Path examines the file at path (a library that processes started later
// will map).
func (p *Prober) Path(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("tls: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("tls: %w", err)
	}
	if !st.Mode().IsRegular() {
		f.Close()
		return fmt.Errorf("tls: %s is not a regular file", path)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	key := fileKeyOf(st)
	if p.closed || p.known(key) {
		f.Close()
		return nil
	}
	p.examine(key, path, f)
	return nil
}

// fileKeyOf returns the key of a file from its stat.
func fileKeyOf(st os.FileInfo) FileKey {
	sys, _ := st.Sys().(*syscall.Stat_t)
	if sys == nil {
		return FileKey{}
	}
	return FileKey{Dev: sys.Dev, Ino: sys.Ino}
}

func (p *Prober) known(k FileKey) bool {
	if _, ok := p.files[k]; ok {
		return true
	}
	_, ok := p.other[k]
	return ok
}

// examine looks for SSL functions in f and probes it if it has them. It
// takes f over. Called with p.mu held.
func (p *Prober) examine(key FileKey, path string, f *os.File) {
	p.stats.FilesExamined++
	funcs, err := Symbols(f)
	if err != nil {
		p.stats.ELFErrors++
	}
	ssl := hasData(funcs)
	if !ssl && err == nil && !errors.Is(p.cfg.Programs.GoErr, ErrGoDisabled) {
		if p.examineGo(key, path, f) {
			return
		}
	}
	if !ssl {
		funcs = nil
		if err == nil {
			err = errors.New("no SSL_write or SSL_read symbol")
		}
	}
	// A libssl without the functions (stripped, or another library of
	// the name) is worth a probe_status row as a file with them is; the
	// rows are bounded as the probes are.
	reported := ssl || strings.HasPrefix(filepath.Base(path), "libssl")
	if reported && len(p.files) >= 2*p.cfg.MaxFiles {
		reported = false
		p.stats.FilesOverMax++
	}
	if !reported {
		f.Close()
		if len(p.other) >= maxOther {
			clear(p.other)
		}
		p.other[key] = struct{}{}
		return
	}
	file := &fileState{Key: key, Path: path, Funcs: funcs}
	if ssl {
		file.Probes = Placement(f, funcs)
	}
	p.files[key] = file
	switch {
	case !ssl:
		file.Err = err
	case p.probed >= p.cfg.MaxFiles:
		file.Err = fmt.Errorf("not probed: %d files are (MaxFiles)", p.cfg.MaxFiles)
		p.stats.FilesOverMax++
	default:
		file.f = f
		p.probed++
		if p.detached {
			return // Attach sets its probes
		}
		if p.attach(file) == nil {
			file.attached = true
			p.stats.FilesProbed++
			return
		}
	}
	if file.f == nil {
		f.Close()
	}
	p.stats.FilesFailed++
}

// hasData reports whether funcs has a function that moves data.
func hasData(funcs map[string]uint64) bool {
	for _, fn := range []string{FuncWrite, FuncWriteEx, FuncRead, FuncReadEx} {
		if _, ok := funcs[fn]; ok {
			return true
		}
	}
	return false
}

// attach sets file's probes: all, or none and file.Err says why.
func (p *Prober) attach(file *fileState) error {
	ex, err := link.OpenExecutable("/proc/self/fd/" + strconv.Itoa(int(file.f.Fd())))
	if err != nil {
		file.Err = err
		return err
	}
	if file.Go != nil {
		return p.attachGo(ex, file)
	}
	if p.cfg.Programs.Multi != nil {
		if err := p.attachMulti(ex, file); err == nil {
			file.Err = nil
			return nil
		}
		// A kernel without uprobe_multi for this file: perf events.
	}
	for _, pr := range file.Probes {
		opts := &link.UprobeOptions{Address: pr.Offset}
		l, err := ex.Uprobe(pr.Kind, p.cfg.Programs.Entry[pr.Kind], opts)
		if err == nil {
			file.links = append(file.links, l)
			l, err = ex.Uretprobe(pr.Kind, p.cfg.Programs.Return, opts)
		}
		if err != nil {
			closeLinks(file)
			file.Err = fmt.Errorf("attach %s: %w", pr.Where, err)
			return file.Err
		}
		file.links = append(file.links, l)
	}
	file.Err = nil
	return nil
}

// attachMulti sets file's probes as two uprobe_multi links.
func (p *Prober) attachMulti(ex *link.Executable, file *fileState) error {
	var opts link.UprobeMultiOptions
	for _, pr := range file.Probes {
		opts.Addresses = append(opts.Addresses, pr.Offset)
		opts.Cookies = append(opts.Cookies, Cookies[pr.Kind])
	}
	entry, err := ex.UprobeMulti(nil, p.cfg.Programs.Multi, &opts)
	if err != nil {
		return err
	}
	ret, err := ex.UretprobeMulti(nil, p.cfg.Programs.MultiReturn, &opts)
	if err != nil {
		entry.Close()
		return err
	}
	file.links = []link.Link{entry, ret}
	return nil
}

func closeLinks(file *fileState) {
	closeAll(file.links)
	file.links = nil
}

// closeAll closes links concurrently: removing a uprobe waits for a
// grace period (about 0.1 s each here), and concurrent removals share
// them.
func closeAll(links []link.Link) {
	var wg sync.WaitGroup
	for _, l := range links {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l.Close()
		}()
	}
	wg.Wait()
}

// Detach removes every probe: traced processes stop paying for them. The
// files stay known.
func (p *Prober) Detach() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.detached = true
	p.closeProbes()
}

// closeProbes removes every file's probes. Called with p.mu held.
func (p *Prober) closeProbes() {
	var all []link.Link
	for _, file := range p.files {
		all = append(all, file.links...)
		file.links = nil
	}
	closeAll(all)
}

// Attach sets the probes again after Detach.
func (p *Prober) Attach() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.detached || p.closed {
		return
	}
	p.detached = false
	for _, file := range p.files {
		if file.f == nil {
			continue // not probed: over MaxFiles, or no functions
		}
		if err := p.attach(file); err != nil {
			p.stats.FilesFailed++
		} else if !file.attached {
			file.attached = true
			p.stats.FilesProbed++
			if file.Go != nil {
				p.stats.GoFilesProbed++
			}
		}
	}
}

// Close removes every probe and closes the files.
func (p *Prober) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	p.closeProbes()
	for _, file := range p.files {
		if file.f != nil {
			file.f.Close()
			file.f = nil
		}
	}
}

// Stats returns the counters.
func (p *Prober) Stats() Stats {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stats
}

// Files returns the state of every file with SSL functions (or named
// libssl), by path.
func (p *Prober) Files() []Status {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]Status, 0, len(p.files))
	for _, file := range p.files {
		fns := make([]string, 0, len(file.Funcs))
		for fn := range file.Funcs {
			fns = append(fns, fn)
		}
		sort.Strings(fns)
		at := make([]string, len(file.Probes))
		for i, pr := range file.Probes {
			at[i] = pr.Where
		}
		info, _ := json.Marshal(struct {
			Kind      string   `json:"kind"`
			Functions []string `json:"functions"`
			At        []string `json:"at,omitempty"`
			Probes    int      `json:"probes"`
		}{"uprobe", fns, at, len(file.links)})
		if file.Go != nil {
			info = goInfo(file)
		}
		out = append(out, Status{Name: "uprobe:" + file.Path, Err: file.Err, Info: string(info)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Running examines every process that traced accepts, and returns how
// many it examined.
func (p *Prober) Running(traced func(pid uint32) bool) int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return 0
	}
	n := 0
	for _, e := range ents {
		pid, err := strconv.ParseUint(e.Name(), 10, 32)
		if err != nil || !e.IsDir() || !traced(uint32(pid)) {
			continue
		}
		p.mu.Lock()
		closed := p.closed
		p.mu.Unlock()
		if closed {
			break
		}
		if p.Process(uint32(pid)) == nil {
			n++
		}
	}
	return n
}

// hostLibraries are where a distribution keeps its libssl.
var hostLibraries = []string{
	"/lib/*/libssl.so*", "/usr/lib/*/libssl.so*",
	"/lib/libssl.so*", "/usr/lib/libssl.so*",
	"/lib64/libssl.so*", "/usr/lib64/libssl.so*",
	"/usr/local/lib/libssl.so*", "/usr/local/lib64/libssl.so*",
}

// HostLibraries probes the host's libssl files (each once, by inode), so
// that a process that maps them later is traced from its first call,
// without waiting for its mmap to be seen. It returns how many files it
// looked at.
func (p *Prober) HostLibraries() int {
	n := 0
	for _, pat := range hostLibraries {
		paths, _ := filepath.Glob(pat)
		for _, path := range paths {
			if p.Path(path) == nil {
				n++
			}
		}
	}
	return n
}
