// Command gotls is the Go crypto/tls program of the Go probe tests,
// built by them with each Go toolchain, stripped and not. It uses only
// the standard library of Go 1.19, so that every toolchain builds it.
//
//	gotls server        serve HTTPS on 127.0.0.1 (HTTP/1.1 and h2), print the port
//	gotls client URL h1|h2 N
//	                    wait for a line on stdin, then make N rounds of
//	                    GET /hello?i=K and POST /echo, on one connection
package main

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"os"
	"strconv"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		log.Fatal("usage: gotls server | client URL h1|h2 N")
	}
	switch os.Args[1] {
	case "server":
		server()
	case "client":
		n, _ := strconv.Atoi(os.Args[4])
		client(os.Args[2], os.Args[3], n)
	}
}

// cert makes a self-signed certificate for 127.0.0.1.
func cert() tls.Certificate {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		log.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		log.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

func server() {
	mux := http.NewServeMux()
	mux.HandleFunc("/hello", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"hello":"`+r.URL.Query().Get("i")+`"}`)
	})
	mux.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprintf(w, "got %d bytes", len(b))
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	srv := &http.Server{Handler: mux, TLSConfig: &tls.Config{
		Certificates: []tls.Certificate{cert()},
		NextProtos:   []string{"h2", "http/1.1"},
	}}
	fmt.Printf("port %d\n", ln.Addr().(*net.TCPAddr).Port)
	os.Stdout.Sync()
	log.Fatal(srv.ServeTLS(ln, "", ""))
}

func client(url, proto string, n int) {
	tr := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}
	if proto == "h2" {
		tr.ForceAttemptHTTP2 = true
	} else {
		tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
	}
	c := &http.Client{Transport: tr}
	bufio.NewReader(os.Stdin).ReadString('\n')
	for i := 0; i < n; i++ {
		resp, err := c.Get(fmt.Sprintf("%s/hello?i=%d", url, i))
		if err != nil {
			log.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		fmt.Printf("%s %d %s\n", resp.Proto, resp.StatusCode, b)
		resp, err = c.Post(url+"/echo", "text/plain", bytes.NewReader(bytes.Repeat([]byte("e"), 3000+i)))
		if err != nil {
			log.Fatal(err)
		}
		b, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
		fmt.Printf("%s %d %s\n", resp.Proto, resp.StatusCode, b)
	}
}
