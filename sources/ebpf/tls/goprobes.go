package tls

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"

	"github.com/cilium/ebpf/link"
)

// ErrGoDisabled, as Programs.GoErr, turns the Go probes off: Go programs
// are not looked at.
var ErrGoDisabled = errors.New("Go crypto/tls probes turned off")

// examineGo probes f if it is a Go program that uses crypto/tls, and
// reports whether it is one: it then takes f over. Called with p.mu held.
func (p *Prober) examineGo(key FileKey, path string, f *os.File) bool {
	gb, err := ReadGo(f)
	if errors.Is(err, errNotGoTLS) {
		return false
	}
	p.stats.GoFiles++
	if len(p.files) >= 2*p.cfg.MaxFiles {
		p.stats.FilesOverMax++
		f.Close()
		p.rememberOther(key)
		return true
	}
	if gb == nil {
		gb = &GoBinary{}
	}
	file := &fileState{Key: key, Path: path, Go: gb}
	p.files[key] = file
	switch {
	case err != nil:
		file.Err = err
	case p.cfg.Programs.GoEnter == nil || p.cfg.Programs.GoReturn == nil:
		file.Err = fmt.Errorf("Go probes not loaded: %v", p.cfg.Programs.GoErr)
	case p.probed >= p.cfg.MaxFiles:
		file.Err = fmt.Errorf("not probed: %d files are (MaxFiles)", p.cfg.MaxFiles)
		p.stats.FilesOverMax++
	default:
		file.f = f
		p.probed++
		if p.detached {
			return true // Attach sets its probes
		}
		if p.attach(file) == nil {
			file.attached = true
			p.stats.FilesProbed++
			p.stats.GoFilesProbed++
			return true
		}
	}
	if file.f == nil {
		f.Close()
	}
	p.stats.FilesFailed++
	return true
}

// rememberOther records a file examined and not probed. Called with p.mu
// held.
func (p *Prober) rememberOther(key FileKey) {
	if len(p.other) >= maxOther {
		clear(p.other)
	}
	p.other[key] = struct{}{}
}

// attachGo sets a Go program's probes: a uprobe at the entry of each
// function and at each of its RET instructions (no uretprobes: see
// gotls.c), all or none. The cookies tell the BPF side the function and
// the binary's struct offsets.
func (p *Prober) attachGo(ex *link.Executable, file *fileState) error {
	if p.cfg.Programs.GoEnterMulti != nil {
		if err := p.attachGoMulti(ex, file); err == nil {
			return nil
		}
	}
	gb := file.Go
	add := func(name string, prog string, addr, cookie uint64) error {
		pr := p.cfg.Programs.GoEnter
		if prog == "return" {
			pr = p.cfg.Programs.GoReturn
		}
		l, err := ex.Uprobe(name, pr, &link.UprobeOptions{Address: addr, Cookie: cookie})
		if err != nil {
			return fmt.Errorf("attach %s %s at %#x: %w", name, prog, addr, err)
		}
		file.links = append(file.links, l)
		return nil
	}
	for _, name := range GoFuncs {
		fn, ok := gb.Funcs[name]
		if !ok {
			continue
		}
		cookie := gb.Offsets.cookie(goKinds[name])
		err := add(name, "entry", fn.Entry, cookie)
		if name != GoFuncHandshake {
			for _, ret := range fn.Returns {
				if err != nil {
					break
				}
				err = add(name, "return", ret, cookie)
			}
		}
		if err != nil {
			closeLinks(file)
			file.Err = err
			return err
		}
	}
	file.Err = nil
	return nil
}

// goInfo is a Go program's probe_status info: kind "go-uprobe", the Go
// version, the functions found, where the struct offsets came from.
func goInfo(file *fileState) []byte {
	gb := file.Go
	fns := []string{}
	for _, name := range GoFuncs {
		if _, ok := gb.Funcs[name]; ok {
			fns = append(fns, name)
		}
	}
	info, _ := json.Marshal(struct {
		Kind        string   `json:"kind"`
		GoVersion   string   `json:"go_version"`
		Stripped    bool     `json:"stripped"`
		Functions   []string `json:"functions"`
		OffsetsFrom string   `json:"offsets_from,omitempty"`
		Probes      int      `json:"probes"`
	}{"go-uprobe", gb.Version, gb.Stripped, fns, gb.OffsetsFrom, len(file.links)})
	return info
}

// attachGoMulti sets file's Go probes as two uprobe_multi links: the
// functions' entries, and their returns.
func (p *Prober) attachGoMulti(ex *link.Executable, file *fileState) error {
	gb := file.Go
	var entries, returns link.UprobeMultiOptions
	for _, name := range GoFuncs {
		fn, ok := gb.Funcs[name]
		if !ok {
			continue
		}
		cookie := gb.Offsets.cookie(goKinds[name])
		entries.Addresses = append(entries.Addresses, fn.Entry)
		entries.Cookies = append(entries.Cookies, cookie)
		if name == GoFuncHandshake {
			continue
		}
		for _, ret := range fn.Returns {
			returns.Addresses = append(returns.Addresses, ret)
			returns.Cookies = append(returns.Cookies, cookie)
		}
	}
	if len(entries.Addresses) == 0 {
		return fmt.Errorf("no Go TLS function to probe")
	}
	entry, err := ex.UprobeMulti(nil, p.cfg.Programs.GoEnterMulti, &entries)
	if err != nil {
		return err
	}
	file.links = []link.Link{entry}
	if len(returns.Addresses) > 0 {
		ret, err := ex.UprobeMulti(nil, p.cfg.Programs.GoReturnMulti, &returns)
		if err != nil {
			entry.Close()
			file.links = nil
			return err
		}
		file.links = append(file.links, ret)
	}
	file.Err = nil
	return nil
}
