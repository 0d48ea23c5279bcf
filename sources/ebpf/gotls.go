package ebpf

import (
	"errors"
	"fmt"

	cebpf "github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"

	"github.com/pxq-dev/pxq/sources/ebpf/bpf"
)

// goTLSObjects are the Go crypto/tls probes' programs and own maps.
type goTLSObjects struct {
	Enter       *cebpf.Program `ebpf:"go_tls_enter"`
	Return      *cebpf.Program `ebpf:"go_tls_return"`
	EnterMulti  *cebpf.Program `ebpf:"go_tls_enter_multi"`
	ReturnMulti *cebpf.Program `ebpf:"go_tls_return_multi"`
	Calls       *cebpf.Map     `ebpf:"go_calls"`
	Counters    *cebpf.Map     `ebpf:"go_counters"`
}

func (o *goTLSObjects) Close() {
	for _, c := range []interface{ Close() error }{o.Enter, o.Return, o.EnterMulti, o.ReturnMulti, o.Calls, o.Counters} {
		if c != nil {
			c.Close()
		}
	}
}

// loadGoTLS loads the Go crypto/tls programs (bpf/gotls.c) onto the
// tracer's loaded maps: the object carries its own copies of the
// tracer's maps (gotls.c includes trace.c), and each is replaced by the
// tracer's, so the plaintext goes into the same ring, on the same
// connections.
func (t *Tracer) loadGoTLS() (*goTLSObjects, error) {
	spec, err := bpf.LoadGoTLS()
	if err != nil {
		return nil, fmt.Errorf("load Go TLS spec: %w", err)
	}
	o := &t.objs.TraceMaps
	shared := map[string]*cebpf.Map{
		bpf.GoTLSMapEvents:     o.Events,
		bpf.GoTLSMapConns:      o.Conns,
		bpf.GoTLSMapScratchBuf: o.ScratchBuf,
		bpf.GoTLSMapCounters:   o.Counters,
		bpf.GoTLSMapConfigMap:  o.ConfigMap,
		bpf.GoTLSMapSkipPids:   o.SkipPids,
		bpf.GoTLSMapAllowPids:  o.AllowPids,
	}
	for name, m := range shared {
		ms := spec.Maps[name]
		if ms == nil || m == nil {
			return nil, fmt.Errorf("Go TLS: no map %s", name)
		}
		// Sized at load, as the tracer's were.
		ms.MaxEntries = m.MaxEntries()
	}
	if !t.cfg.CopyWholeBodies {
		if err := spec.Variables[bpf.GoTLSVarBodyLimit].Set(uint32(t.cfg.MaxBodyBytes)); err != nil {
			return nil, fmt.Errorf("Go TLS: set body limit: %w", err)
		}
	}
	if !t.uprobeMulti {
		// The kernel would refuse them: load stand-ins, never attached.
		for _, name := range []string{bpf.GoTLSProgGoTlsEnterMulti, bpf.GoTLSProgGoTlsReturnMulti} {
			ps := spec.Programs[name]
			ps.AttachType = cebpf.AttachNone
			ps.Instructions = asm.Instructions{asm.Mov.Imm(asm.R0, 0), asm.Return()}
		}
	}
	var objs goTLSObjects
	err = spec.LoadAndAssign(&objs, &cebpf.CollectionOptions{MapReplacements: shared})
	if err != nil {
		var ve *cebpf.VerifierError
		if errors.As(err, &ve) {
			return nil, fmt.Errorf("Go TLS: BPF verifier rejected the programs: %+v", ve)
		}
		return nil, fmt.Errorf("Go TLS: load BPF programs: %w", err)
	}
	return &objs, nil
}

// goTLSCounters adds the Go probes' BPF counters to c.
func (t *Tracer) goTLSCounters(c map[string]int64) {
	if t.goTLS == nil {
		return
	}
	names := [...]string{"tls.go_calls_without_fd", "tls.go_calls_not_inet"}
	for i, name := range names {
		var per []uint64
		if err := t.goTLS.Counters.Lookup(uint32(i), &per); err != nil {
			continue
		}
		var sum uint64
		for _, v := range per {
			sum += v
		}
		if sum > 0 {
			c[name] = int64(sum)
		}
	}
	ps := t.tls.Stats()
	c["tls.go_files"] = int64(ps.GoFiles)
	c["tls.go_files_probed"] = int64(ps.GoFilesProbed)
}
