// Command hold holds an entry uprobe and a uretprobe, each an empty BPF
// program, at the given file offsets of an executable or library until
// SIGTERM: the cost of the probes alone on the programs that run there.
//
//	go run ./sources/ebpf/bench/uprobecost/hold /usr/lib/x86_64-linux-gnu/libssl.so.3 0x35980 0x35430
package main

import (
	"log"
	"os"
	"os/signal"
	"strconv"
	"syscall"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
)

func main() {
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{Type: ebpf.Kprobe, License: "GPL",
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, 0), asm.Return()}})
	if err != nil {
		log.Fatal(err)
	}
	ex, err := link.OpenExecutable(os.Args[1])
	if err != nil {
		log.Fatal(err)
	}
	for _, a := range os.Args[2:] {
		off, _ := strconv.ParseUint(a, 0, 64)
		opts := &link.UprobeOptions{Address: off}
		if _, err := ex.Uprobe("x", prog, opts); err != nil {
			log.Fatal(err)
		}
		if _, err := ex.Uretprobe("x", prog, opts); err != nil {
			log.Fatal(err)
		}
	}
	log.Printf("attached")
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	<-sig
}
