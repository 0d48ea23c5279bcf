// Package auth secures pxq's gRPC services: TLS (server-side and mutual)
// and a bearer token checked on every call, configured from flags and
// files. The agent, the broker and the embedded server share it, and so
// do their clients (the broker dialing agents, package client).
package auth

import (
	"context"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// ServerConfig is the security of a gRPC server. The zero value is a
// plaintext server that checks nothing; such a server should listen on
// loopback only (see BindAddr).
type ServerConfig struct {
	// CertFile and KeyFile hold the server's certificate chain and key
	// (PEM). Both set: the server speaks TLS.
	CertFile, KeyFile string
	// ClientCAFile, when set, makes TLS mutual: a client must present a
	// certificate signed by one of these CAs (PEM).
	ClientCAFile string
	// Token, when set, must come with every call, as
	// "authorization: Bearer TOKEN" or "pixie-api-key: TOKEN".
	Token string
	// TokenFile holds the token (surrounding space is trimmed); read
	// when Token is empty.
	TokenFile string
}

// Secured reports whether the configuration restricts who may call.
func (c ServerConfig) Secured() bool {
	return c.Token != "" || c.TokenFile != "" || c.ClientCAFile != ""
}

// ServerOptions returns the gRPC options that apply c: transport
// credentials and interceptors that refuse calls without the token.
func (c ServerConfig) ServerOptions() ([]grpc.ServerOption, error) {
	var opts []grpc.ServerOption
	if c.CertFile != "" || c.KeyFile != "" {
		tc, err := c.TLS()
		if err != nil {
			return nil, err
		}
		opts = append(opts, grpc.Creds(credentials.NewTLS(tc)))
	} else if c.ClientCAFile != "" {
		return nil, fmt.Errorf("auth: a client CA (mutual TLS) needs the server's certificate and key too")
	}
	token, err := readToken(c.Token, c.TokenFile)
	if err != nil {
		return nil, err
	}
	if token != "" {
		check := TokenChecker(token)
		opts = append(opts,
			grpc.ChainUnaryInterceptor(func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
				if err := check(ctx); err != nil {
					return nil, err
				}
				return h(ctx, req)
			}),
			grpc.ChainStreamInterceptor(func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, h grpc.StreamHandler) error {
				if err := check(ss.Context()); err != nil {
					return err
				}
				return h(srv, ss)
			}))
	}
	return opts, nil
}

// TLS returns the server's TLS configuration (TLS 1.2 or later; client
// certificates required and verified when ClientCAFile is set).
func (c ServerConfig) TLS() (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("auth: server certificate: %w", err)
	}
	tc := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if c.ClientCAFile != "" {
		pool, err := loadPool(c.ClientCAFile)
		if err != nil {
			return nil, err
		}
		tc.ClientCAs = pool
		tc.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return tc, nil
}

// TokenChecker returns a check that a call's metadata carries token, as
// a bearer token or a Pixie API key. It compares in constant time.
func TokenChecker(token string) func(ctx context.Context) error {
	want := []byte(token)
	return func(ctx context.Context) error {
		md, _ := metadata.FromIncomingContext(ctx)
		var got []string
		for _, v := range md.Get("authorization") {
			scheme, tok, ok := strings.Cut(strings.TrimSpace(v), " ")
			if ok && strings.EqualFold(scheme, "bearer") {
				got = append(got, strings.TrimSpace(tok))
			}
		}
		got = append(got, md.Get("pixie-api-key")...)
		if len(got) == 0 {
			return status.Error(codes.Unauthenticated, "pxq: missing token: send \"authorization: Bearer TOKEN\"")
		}
		for _, g := range got {
			if subtle.ConstantTimeCompare([]byte(g), want) == 1 {
				return nil
			}
		}
		return status.Error(codes.Unauthenticated, "pxq: invalid token")
	}
}

// ClientConfig is the security of a gRPC client (the broker dialing its
// agents, or a user's client dialing a broker).
type ClientConfig struct {
	// CAFile holds the CAs that sign the server's certificate (PEM).
	// With TLS set and no CAFile, the system roots are used.
	CAFile string
	// CertFile and KeyFile hold the client's certificate for mutual TLS.
	CertFile, KeyFile string
	// ServerName overrides the name checked in the server's certificate.
	ServerName string
	// TLS turns TLS on; it is implied by CAFile and CertFile.
	TLS bool
	// Token is sent with every call as "authorization: Bearer TOKEN".
	Token string
	// TokenFile holds the token; read when Token is empty.
	TokenFile string
}

// DialOptions returns the gRPC dial options that apply c.
func (c ClientConfig) DialOptions() ([]grpc.DialOption, error) {
	var opts []grpc.DialOption
	useTLS := c.TLS || c.CAFile != "" || c.CertFile != ""
	if useTLS {
		tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: c.ServerName}
		if c.CAFile != "" {
			pool, err := loadPool(c.CAFile)
			if err != nil {
				return nil, err
			}
			tc.RootCAs = pool
		}
		if c.CertFile != "" || c.KeyFile != "" {
			cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
			if err != nil {
				return nil, fmt.Errorf("auth: client certificate: %w", err)
			}
			tc.Certificates = []tls.Certificate{cert}
		}
		opts = append(opts, grpc.WithTransportCredentials(credentials.NewTLS(tc)))
	} else {
		opts = append(opts, grpc.WithTransportCredentials(insecure.NewCredentials()))
	}
	token, err := readToken(c.Token, c.TokenFile)
	if err != nil {
		return nil, err
	}
	if token != "" {
		opts = append(opts, grpc.WithPerRPCCredentials(bearer(token)))
	}
	return opts, nil
}

// bearer sends a token with every call.
type bearer string

func (b bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(b)}, nil
}

// RequireTransportSecurity is false so that a token also works over
// plaintext on a trusted network (e.g. loopback, or a service mesh).
func (b bearer) RequireTransportSecurity() bool { return false }

func readToken(token, file string) (string, error) {
	if token != "" || file == "" {
		return token, nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("auth: token file: %w", err)
	}
	t := strings.TrimSpace(string(b))
	if t == "" {
		return "", fmt.Errorf("auth: token file %s is empty", file)
	}
	return t, nil
}

func loadPool(file string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("auth: CA file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("auth: CA file %s holds no PEM certificate", file)
	}
	return pool, nil
}

// BindAddr returns the address a server should listen on. A server that
// checks neither a token nor client certificates listens on 127.0.0.1
// only, whatever host addr names, unless allowInsecure; the returned
// note says so (empty when addr is kept as given).
func BindAddr(addr string, secured, allowInsecure bool) (string, string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", "", fmt.Errorf("listen address %q: %w", addr, err)
	}
	if secured || allowInsecure {
		return addr, "", nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() || host == "localhost" {
		return addr, "no token or client CA configured: serving on loopback only (" + addr + ")", nil
	}
	bound := net.JoinHostPort("127.0.0.1", port)
	return bound, fmt.Sprintf("no token or client CA configured: listening on %s only, not %q (configure --token-file or --tls-client-ca, or pass --insecure)", bound, addr), nil
}
