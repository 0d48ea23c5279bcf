package tls

import (
	"debug/elf"
	"fmt"
	"io"

	"golang.org/x/arch/x86/x86asm"
)

// A Probe is where one probed function's entry and return probes are set.
type Probe struct {
	Offset uint64 // file offset of the probed instruction
	Kind   string // the function whose semantics the BPF side applies (Funcs)
	// Funcs are the exported functions the probe stands for, Where says
	// how it was placed (for probe_status).
	Funcs []string
	Where string
}

// Where a probe is placed on x86-64.
//
// A uprobe replaces an instruction with int3. The kernel then emulates the
// instruction (push, nop, call, jmp, jcc) or executes it out of line with
// single-stepping, a second exception that costs 20–30 µs a hit on the
// Firecracker guests measured (docs/performance.md), against under 1 µs
// for an emulated one. Debian's OpenSSL 3.0 begins SSL_write, SSL_read and
// their _ex forms with `sub $imm,%rsp`, which is single-stepped: nginx and
// wrk paid ~70 µs a request each for it.
//
// These four functions are thin wrappers around one internal function per
// direction (ssl_write_internal(ssl, buf, num, size_t *written),
// ssl_read_internal(…, size_t *readbytes)), which takes the _ex form's
// arguments, returns > 0 on success and begins with push. When the first
// call of SSL_write and the first call of SSL_write_ex reach the same
// function, that SSL_write_ex does nothing before it but adjust the stack
// (so the callee gets SSL_write_ex's own arguments), and the callee's first
// instruction is emulated, the callee is probed instead of both wrappers,
// as an _ex call. Otherwise (other builds, LTO, BoringSSL) the exported
// functions are probed as before. Either way a leading endbr64 is stepped
// over: the registers and the return address are the same after it, and
// an emulated instruction may follow.

// maxWrapper bounds the bytes of a wrapper read to find its first call.
const maxWrapper = 128

// Placement returns where to set the probes of the functions found by
// Symbols in the ELF object r.
func Placement(r io.ReaderAt, funcs map[string]uint64) []Probe {
	amd64 := false
	if f, err := elf.NewFile(r); err == nil {
		amd64 = f.Machine == elf.EM_X86_64
		f.Close()
	}
	return placement(r, funcs, amd64)
}

// placement is Placement for code of x86-64 (amd64) or of another
// machine, whose probes stay where the symbols are.
func placement(r io.ReaderAt, funcs map[string]uint64, amd64 bool) []Probe {
	var out []Probe
	done := map[string]bool{}
	if amd64 {
		for _, pair := range [][2]string{{FuncWrite, FuncWriteEx}, {FuncRead, FuncReadEx}} {
			if p, ok := shared(r, funcs, pair[0], pair[1]); ok {
				out = append(out, p)
				done[pair[0]], done[pair[1]] = true, true
			}
		}
	}
	for _, fn := range Funcs {
		off, ok := funcs[fn]
		if !ok || done[fn] {
			continue
		}
		p := Probe{Offset: off, Kind: fn, Funcs: []string{fn}, Where: fn}
		if amd64 {
			if skip, first := entryInstruction(r, off); skip > 0 {
				p.Offset += skip
				p.Where = fmt.Sprintf("%s+%d (%s)", fn, skip, first)
			}
		}
		out = append(out, p)
	}
	return out
}

// shared returns the probe of the internal function that wrapper and its
// _ex form ex both call first, if the rules above hold.
func shared(r io.ReaderAt, funcs map[string]uint64, wrapper, ex string) (Probe, bool) {
	wOff, ok1 := funcs[wrapper]
	xOff, ok2 := funcs[ex]
	if !ok1 || !ok2 {
		return Probe{}, false
	}
	wTarget, ok1 := firstCall(r, wOff, false)
	xTarget, ok2 := firstCall(r, xOff, true)
	if !ok1 || !ok2 || wTarget != xTarget || wTarget == wOff || wTarget == xOff {
		return Probe{}, false
	}
	code := make([]byte, 20)
	n, _ := r.ReadAt(code, int64(wTarget))
	code = code[:n]
	at := wTarget
	if isEndbr64(code) {
		at, code = at+4, code[4:]
	}
	first, ok := emulated(code)
	if !ok {
		return Probe{}, false
	}
	return Probe{
		Offset: at,
		Kind:   ex,
		Funcs:  []string{wrapper, ex},
		Where:  fmt.Sprintf("the function %s and %s call (file offset %#x, %s)", wrapper, ex, at, first),
	}, true
}

// firstCall returns the file offset of the target of the first direct
// call in the function at off. With passThrough, the instructions before
// the call may only adjust the stack: the callee then gets the function's
// own arguments.
func firstCall(r io.ReaderAt, off uint64, passThrough bool) (uint64, bool) {
	code := make([]byte, maxWrapper)
	n, _ := r.ReadAt(code, int64(off))
	code = code[:n]
	for i := 0; i < len(code); {
		if isEndbr64(code[i:]) { // x86asm does not decode it
			i += 4
			continue
		}
		inst, err := x86asm.Decode(code[i:], 64)
		if err != nil {
			return 0, false
		}
		next := i + inst.Len
		switch inst.Op {
		case x86asm.CALL:
			rel, isRel := inst.Args[0].(x86asm.Rel)
			if !isRel {
				return 0, false // indirect: not a wrapper's call
			}
			return uint64(int64(off) + int64(next) + int64(rel)), true
		case x86asm.RET, x86asm.JMP:
			return 0, false
		}
		if passThrough && !stackOnly(inst) {
			return 0, false
		}
		i = next
	}
	return 0, false
}

// stackOnly reports whether inst leaves the argument registers alone: a
// nop, a push, or a subtraction from the stack pointer.
func stackOnly(inst x86asm.Inst) bool {
	switch inst.Op {
	case x86asm.NOP, x86asm.PUSH:
		return true
	case x86asm.SUB:
		r, ok := inst.Args[0].(x86asm.Reg)
		return ok && r == x86asm.RSP
	}
	return false
}

func isEndbr64(b []byte) bool {
	return len(b) >= 4 && b[0] == 0xf3 && b[1] == 0x0f && b[2] == 0x1e && b[3] == 0xfa
}

// emulated reports whether the kernel emulates the first instruction of
// code at a uprobe (push of a register, nop) rather than single-stepping
// it, and names it.
func emulated(code []byte) (string, bool) {
	inst, err := x86asm.Decode(code, 64)
	if err != nil {
		return "", false
	}
	switch inst.Op {
	case x86asm.NOP:
		return "nop", true
	case x86asm.PUSH:
		if _, ok := inst.Args[0].(x86asm.Reg); ok {
			return "push " + inst.Args[0].String(), true
		}
	}
	return "", false
}

// entryInstruction returns how many bytes of a leading endbr64 to step
// over at off (0 or 4) so that the probe lands on an emulated instruction,
// and that instruction.
func entryInstruction(r io.ReaderAt, off uint64) (uint64, string) {
	code := make([]byte, 20)
	n, _ := r.ReadAt(code, int64(off))
	code = code[:n]
	if !isEndbr64(code) {
		return 0, ""
	}
	if first, ok := emulated(code[4:]); ok {
		return 4, first
	}
	return 0, ""
}
