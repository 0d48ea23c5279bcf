package brokertest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// Certs are PEM files of a test PKI: a CA, a server certificate for
// 127.0.0.1 and a client certificate signed by it, and a client
// certificate signed by another CA (which the server must refuse).
type Certs struct {
	CA, ServerCert, ServerKey, ClientCert, ClientKey, RogueCert, RogueKey string
}

// NewCerts writes a test PKI into a temporary folder.
func NewCerts(t testing.TB) Certs {
	t.Helper()
	dir := t.TempDir()
	write := func(name, typ string, der []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	newKey := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	serial := int64(1)
	issue := func(tmpl *x509.Certificate, key *ecdsa.PrivateKey, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (*x509.Certificate, []byte) {
		serial++
		tmpl.SerialNumber = big.NewInt(serial)
		tmpl.NotBefore, tmpl.NotAfter = time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour)
		if parent == nil {
			parent, parentKey = tmpl, key
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
		if err != nil {
			t.Fatal(err)
		}
		c, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		return c, der
	}
	keyDER := func(k *ecdsa.PrivateKey) []byte {
		b, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	caTmpl := func(name string) *x509.Certificate {
		return &x509.Certificate{Subject: pkix.Name{CommonName: name}, IsCA: true, BasicConstraintsValid: true,
			KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	}
	leaf := func(name string, usage x509.ExtKeyUsage) *x509.Certificate {
		return &x509.Certificate{Subject: pkix.Name{CommonName: name}, KeyUsage: x509.KeyUsageDigitalSignature,
			ExtKeyUsage: []x509.ExtKeyUsage{usage}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"}}
	}
	var c Certs
	caKey := newKey()
	ca, caDER := issue(caTmpl("pxq test CA"), caKey, nil, nil)
	c.CA = write("ca.pem", "CERTIFICATE", caDER)
	sk := newKey()
	_, der := issue(leaf("pxq agent", x509.ExtKeyUsageServerAuth), sk, ca, caKey)
	c.ServerCert, c.ServerKey = write("server.pem", "CERTIFICATE", der), write("server.key", "PRIVATE KEY", keyDER(sk))
	ck := newKey()
	_, der = issue(leaf("pxq broker", x509.ExtKeyUsageClientAuth), ck, ca, caKey)
	c.ClientCert, c.ClientKey = write("client.pem", "CERTIFICATE", der), write("client.key", "PRIVATE KEY", keyDER(ck))
	rogueCAKey := newKey()
	rogueCA, _ := issue(caTmpl("rogue CA"), rogueCAKey, nil, nil)
	rk := newKey()
	_, der = issue(leaf("pxq broker", x509.ExtKeyUsageClientAuth), rk, rogueCA, rogueCAKey)
	c.RogueCert, c.RogueKey = write("rogue.pem", "CERTIFICATE", der), write("rogue.key", "PRIVATE KEY", keyDER(rk))
	return c
}
