package main

import (
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// The gRPC mode: grpc-go's health service as the server and unary
// Health/Check calls as the load, over h2c (Go's TLS has probes of its
// own, measured apart). Generated code ships with grpc-go, so the bench
// needs no protobuf of its own.

// runGRPCServer serves the health service on a loopback port, prints it,
// and exits when stdin closes.
func runGRPCServer() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	srv := grpc.NewServer()
	healthpb.RegisterHealthServer(srv, health.NewServer())
	go srv.Serve(ln)
	fmt.Println(ln.Addr().String())
	io.Copy(io.Discard, os.Stdin)
	srv.Stop()
}

// grpcRound makes unary calls for d on -conns connections opened for the
// round (one caller each, -rate in all when set), and closes them.
func grpcRound(d time.Duration) result {
	var ccs []*grpc.ClientConn
	for i := 0; i < *conns; i++ {
		cc, err := grpc.NewClient(*url, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			log.Fatal(err)
		}
		ccs = append(ccs, cc)
	}
	var n atomic.Int64
	var ru0 syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
	stop := time.Now().Add(d)
	var wg sync.WaitGroup
	t0 := time.Now()
	for _, cc := range ccs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := healthpb.NewHealthClient(cc)
			var tick *time.Ticker
			if *rate > 0 {
				tick = time.NewTicker(time.Duration(float64(time.Second) * float64(*conns) / float64(*rate)))
				defer tick.Stop()
			}
			for time.Now().Before(stop) {
				if tick != nil {
					<-tick.C
				}
				if _, err := c.Check(context.Background(), &healthpb.HealthCheckRequest{}); err != nil {
					log.Fatal(err)
				}
				n.Add(1)
			}
		}()
	}
	wg.Wait()
	secs := time.Since(t0).Seconds()
	for _, cc := range ccs {
		cc.Close()
	}
	var ru1 syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
	cpu := tv(ru1.Utime) + tv(ru1.Stime) - tv(ru0.Utime) - tv(ru0.Stime)
	return result{Requests: n.Load(), Seconds: secs, CPU: cpu}
}
