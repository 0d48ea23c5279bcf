package otel

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/url"
	"sort"
	"strings"
	"time"

	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetricgrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"google.golang.org/grpc/credentials"

	"github.com/pxq-dev/pxq/plan"
)

// target is a collector and how to reach it, from a px.otel.Endpoint or
// --otel-endpoint:
//
//	http://host:4318[/prefix]   OTLP/HTTP (protobuf), /v1/metrics and /v1/traces under the prefix
//	https://host:4318[/prefix]  the same over TLS
//	grpc://host:4317            OTLP/gRPC in plaintext
//	grpcs://host:4317           OTLP/gRPC over TLS
//	host:4317                   OTLP/gRPC, over TLS unless insecure (Pixie's form)
type target struct {
	http    bool
	host    string // host:port
	path    string // OTLP/HTTP path prefix, without the trailing /
	tls     bool
	headers map[string]string
	timeout time.Duration
}

func parseTarget(e *plan.OTelEndpoint, defTimeout time.Duration) (target, error) {
	t := target{headers: e.Headers, timeout: e.Timeout}
	if t.timeout <= 0 {
		t.timeout = defTimeout
	}
	raw := strings.TrimSpace(e.URL)
	if i := strings.Index(raw, "://"); i >= 0 {
		u, err := url.Parse(raw)
		if err != nil {
			return t, fmt.Errorf("endpoint %q: %v", e.URL, err)
		}
		switch strings.ToLower(u.Scheme) {
		case "http", "https":
			t.http, t.tls = true, u.Scheme == "https"
			t.path = strings.TrimSuffix(u.Path, "/")
			if u.Port() == "" {
				return t, fmt.Errorf("endpoint %q names no port (OTLP/HTTP is usually 4318)", e.URL)
			}
		case "grpc", "grpcs":
			t.tls = u.Scheme == "grpcs"
			if u.Path != "" && u.Path != "/" {
				return t, fmt.Errorf("endpoint %q: an OTLP/gRPC endpoint has no path", e.URL)
			}
		default:
			return t, fmt.Errorf("endpoint %q: scheme %q is none of http, https (OTLP/HTTP), grpc, grpcs (OTLP/gRPC)", e.URL, u.Scheme)
		}
		if u.RawQuery != "" || u.User != nil {
			return t, fmt.Errorf("endpoint %q: no query or user info, please (headers go in px.otel.Endpoint's headers)", e.URL)
		}
		raw = u.Host
	} else {
		t.tls = !e.Insecure
	}
	host, port, err := net.SplitHostPort(raw)
	if err != nil || host == "" || port == "" {
		return t, fmt.Errorf("endpoint %q: want host:port, http://host:port or grpc://host:port", e.URL)
	}
	t.host = raw
	return t, nil
}

// key identifies the target: exports to one key share a sender.
func (t target) key() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%v|%s|%s|%v|%v", t.http, t.host, t.path, t.tls, t.timeout)
	names := make([]string, 0, len(t.headers))
	for k := range t.headers {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		fmt.Fprintf(&b, "|%s=%s", k, t.headers[k])
	}
	return b.String()
}

func (t target) String() string {
	switch {
	case t.http && t.tls:
		return "https://" + t.host + t.path
	case t.http:
		return "http://" + t.host + t.path
	case t.tls:
		return "grpcs://" + t.host
	}
	return "grpc://" + t.host
}

// The exporters retry nothing themselves: the sender retries with its
// own backoff so that it can count attempts and give up when it must.

func (t target) metricExporter(ctx context.Context) (sdkmetric.Exporter, error) {
	if t.http {
		opts := []otlpmetrichttp.Option{otlpmetrichttp.WithEndpoint(t.host), otlpmetrichttp.WithURLPath(t.path + "/v1/metrics"),
			otlpmetrichttp.WithTimeout(t.timeout), otlpmetrichttp.WithRetry(otlpmetrichttp.RetryConfig{Enabled: false})}
		if t.tls {
			opts = append(opts, otlpmetrichttp.WithTLSClientConfig(&tls.Config{MinVersion: tls.VersionTLS12}))
		} else {
			opts = append(opts, otlpmetrichttp.WithInsecure())
		}
		if len(t.headers) > 0 {
			opts = append(opts, otlpmetrichttp.WithHeaders(t.headers))
		}
		return otlpmetrichttp.New(ctx, opts...)
	}
	opts := []otlpmetricgrpc.Option{otlpmetricgrpc.WithEndpoint(t.host), otlpmetricgrpc.WithTimeout(t.timeout),
		otlpmetricgrpc.WithRetry(otlpmetricgrpc.RetryConfig{Enabled: false})}
	if t.tls {
		opts = append(opts, otlpmetricgrpc.WithTLSCredentials(credentials.NewClientTLSFromCert(nil, "")))
	} else {
		opts = append(opts, otlpmetricgrpc.WithInsecure())
	}
	if len(t.headers) > 0 {
		opts = append(opts, otlpmetricgrpc.WithHeaders(t.headers))
	}
	return otlpmetricgrpc.New(ctx, opts...)
}

func (t target) traceExporter(ctx context.Context) (sdktrace.SpanExporter, error) {
	if t.http {
		opts := []otlptracehttp.Option{otlptracehttp.WithEndpoint(t.host), otlptracehttp.WithURLPath(t.path + "/v1/traces"),
			otlptracehttp.WithTimeout(t.timeout), otlptracehttp.WithRetry(otlptracehttp.RetryConfig{Enabled: false})}
		if t.tls {
			opts = append(opts, otlptracehttp.WithTLSClientConfig(&tls.Config{MinVersion: tls.VersionTLS12}))
		} else {
			opts = append(opts, otlptracehttp.WithInsecure())
		}
		if len(t.headers) > 0 {
			opts = append(opts, otlptracehttp.WithHeaders(t.headers))
		}
		return otlptracehttp.New(ctx, opts...)
	}
	opts := []otlptracegrpc.Option{otlptracegrpc.WithEndpoint(t.host), otlptracegrpc.WithTimeout(t.timeout),
		otlptracegrpc.WithRetry(otlptracegrpc.RetryConfig{Enabled: false})}
	if t.tls {
		opts = append(opts, otlptracegrpc.WithTLSCredentials(credentials.NewClientTLSFromCert(nil, "")))
	} else {
		opts = append(opts, otlptracegrpc.WithInsecure())
	}
	if len(t.headers) > 0 {
		opts = append(opts, otlptracegrpc.WithHeaders(t.headers))
	}
	return otlptracegrpc.New(ctx, opts...)
}

// CheckEndpoint reports whether pxq can send to e.
func CheckEndpoint(e *plan.OTelEndpoint) error {
	_, err := parseTarget(e, DefaultTimeout)
	return err
}
