package bpf

import (
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
)

// The verifier limits the stack of a program and of the functions it calls
// (global functions and bpf_loop callbacks included) to 512 bytes together,
// each frame rounded up: to 16 bytes with the JIT, 32 without. Kernels
// differ in what they count (Linux 6.18 rejected sys_exit at 544 bytes
// where earlier ones had loaded it), so the objects are held to the
// stricter count here, on every machine, rather than found out on one.
func TestStackDepth(t *testing.T) {
	for name, load := range map[string]func() (*ebpf.CollectionSpec, error){"trace": LoadTrace, "gotls": LoadGoTLS} {
		spec, err := load()
		if err != nil {
			t.Fatal(err)
		}
		for pname, p := range spec.Programs {
			frames := stackFrames(p.Instructions)
			depth, chain := deepestChain(p.Name, frames, map[string]bool{})
			t.Logf("%s/%s: %d bytes: %v", name, pname, depth, chain)
			if depth > 512 {
				t.Errorf("%s/%s: combined stack %d bytes > 512 (%v): move locals to the scratch map", name, pname, depth, chain)
			}
		}
	}
}

type frame struct {
	depth   int      // bytes below r10 the function touches
	callees []string // functions it calls or passes to bpf_loop
}

// stackFrames splits a program's instructions into its functions (each
// starts at a symbol) and measures each one's stack: the deepest r10
// offset it stores to or loads from, or takes the address of.
func stackFrames(insns asm.Instructions) map[string]*frame {
	frames := map[string]*frame{}
	var f *frame
	fromFP := map[asm.Register]bool{} // registers holding r10
	for _, ins := range insns {
		if sym := ins.Symbol(); sym != "" {
			f = &frame{}
			frames[sym] = f
			fromFP = map[asm.Register]bool{}
		}
		if f == nil {
			continue
		}
		if ins.IsFunctionCall() || ins.IsLoadOfFunctionPointer() {
			f.callees = append(f.callees, ins.Reference())
			continue
		}
		deeper := func(off int64) {
			if off < 0 && int(-off) > f.depth {
				f.depth = int(-off)
			}
		}
		op := ins.OpCode
		switch {
		case op.Class().IsLoad() && ins.Src == asm.R10:
			deeper(int64(ins.Offset))
		case op.Class().IsStore() && ins.Dst == asm.R10:
			deeper(int64(ins.Offset))
		case op.Class().IsALU():
			alu := op.ALUOp()
			switch {
			case alu == asm.Mov && op.Source() == asm.RegSource:
				fromFP[ins.Dst] = ins.Src == asm.R10
			case alu == asm.Add && op.Source() == asm.ImmSource && fromFP[ins.Dst]:
				deeper(ins.Constant)
				fromFP[ins.Dst] = false
			default:
				fromFP[ins.Dst] = false
			}
		case op.Class().IsLoad():
			fromFP[ins.Dst] = false
		}
	}
	return frames
}

// deepestChain returns the largest sum of frames, each rounded up to 32
// bytes, over the call chains from fn.
func deepestChain(fn string, frames map[string]*frame, onPath map[string]bool) (int, []string) {
	f := frames[fn]
	if f == nil || onPath[fn] {
		return 0, nil
	}
	onPath[fn] = true
	defer delete(onPath, fn)
	best, bestChain := 0, []string(nil)
	for _, c := range f.callees {
		if d, ch := deepestChain(c, frames, onPath); d > best {
			best, bestChain = d, ch
		}
	}
	own := (f.depth + 31) / 32 * 32
	return own + best, append([]string{fn}, bestChain...)
}
