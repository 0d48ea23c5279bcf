package funcs

import (
	"context"
	"encoding/json"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"
)

// Network functions: reverse DNS with a cache, and CIDR membership.

func init() {
	registerPlaceBound("nslookup", "the host name of an IP address by reverse DNS (cached); the address itself when it has none",
		sig(tS, nslookupKernel, tS))
	register("cidrs_contain_ip", "whether an IP address (2nd) lies in one of a JSON list of CIDRs (1st)",
		sig(tB, fn2(rStr, rStr, tB, cidrsContain), tS, tS))
	registerPlaceBound("get_cidrs", "the pod and service CIDRs of the cluster as a JSON list (empty when unknown)",
		sig(tS, fn0(func(*Context) string { return "[]" })))
}

const (
	dnsTimeout  = 250 * time.Millisecond
	dnsTTL      = 5 * time.Minute
	dnsCacheMax = 1 << 16
)

type dnsEntry struct {
	name    string
	expires time.Time
}

var dnsCache = struct {
	sync.Mutex
	m map[string]dnsEntry
}{m: map[string]dnsEntry{}}

// LookupAddr is the resolver nslookup uses; tests replace it.
var LookupAddr = func(ctx context.Context, ip string) ([]string, error) {
	return net.DefaultResolver.LookupAddr(ctx, ip)
}

// reverseDNS returns ip's host name, from the cache when fresh. Failures
// are cached too, so that a dead resolver costs one timeout per address
// per TTL.
func reverseDNS(ip string) string {
	now := time.Now()
	dnsCache.Lock()
	e, ok := dnsCache.m[ip]
	dnsCache.Unlock()
	if ok && now.Before(e.expires) {
		return e.name
	}
	name := ip
	if _, err := netip.ParseAddr(ip); err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), dnsTimeout)
		names, err := LookupAddr(ctx, ip)
		cancel()
		if err == nil && len(names) > 0 {
			name = strings.TrimSuffix(names[0], ".")
		}
	}
	dnsCache.Lock()
	if len(dnsCache.m) >= dnsCacheMax {
		dnsCache.m = map[string]dnsEntry{}
	}
	dnsCache.m[ip] = dnsEntry{name, now.Add(dnsTTL)}
	dnsCache.Unlock()
	return name
}

// nslookupKernel resolves each distinct address of a batch once.
func nslookupKernel(ctx *Context, args []Value, n int) (Value, error) {
	seen := map[string]string{}
	return fn1(rStr, tS, func(ip string) string {
		if s, ok := seen[ip]; ok {
			return s
		}
		s := reverseDNS(ip)
		seen[strings.Clone(ip)] = s
		return s
	})(ctx, args, n)
}

var prefixCache sync.Map // JSON list → []netip.Prefix

func cidrsContain(list, ip string) bool {
	addr, err := netip.ParseAddr(ip)
	if err != nil {
		return false
	}
	var prefixes []netip.Prefix
	if p, ok := prefixCache.Load(list); ok {
		prefixes = p.([]netip.Prefix)
	} else {
		var ss []string
		if json.Unmarshal([]byte(list), &ss) != nil {
			ss = strings.Split(list, ",")
		}
		for _, s := range ss {
			if p, err := netip.ParsePrefix(strings.TrimSpace(s)); err == nil {
				prefixes = append(prefixes, p)
			}
		}
		prefixCache.Store(strings.Clone(list), prefixes)
	}
	for _, p := range prefixes {
		if p.Contains(addr.Unmap()) || p.Contains(addr) {
			return true
		}
	}
	return false
}
