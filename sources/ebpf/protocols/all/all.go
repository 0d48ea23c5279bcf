// Package all is the list of the protocols the socket tracer parses, in
// the order their inference rules are tried. Adding a protocol is adding
// its package here: the tracer creates its tables and tries its rule, and
// sources/tables lists its tables for `pxq schemas`, GetSchemas and
// docs/tables.md.
package all

import (
	"github.com/pxq-dev/pxq/sources/ebpf/protocols"
	"github.com/pxq-dev/pxq/sources/ebpf/protocols/amqp"
	"github.com/pxq-dev/pxq/sources/ebpf/protocols/cql"
	"github.com/pxq-dev/pxq/sources/ebpf/protocols/dns"
	"github.com/pxq-dev/pxq/sources/ebpf/protocols/http"
	"github.com/pxq-dev/pxq/sources/ebpf/protocols/http2"
	"github.com/pxq-dev/pxq/sources/ebpf/protocols/kafka"
	"github.com/pxq-dev/pxq/sources/ebpf/protocols/mongodb"
	"github.com/pxq-dev/pxq/sources/ebpf/protocols/mysql"
	"github.com/pxq-dev/pxq/sources/ebpf/protocols/nats"
	"github.com/pxq-dev/pxq/sources/ebpf/protocols/pgsql"
	"github.com/pxq-dev/pxq/sources/ebpf/protocols/redis"
)

// Protocols returns the protocols, in inference order.
func Protocols() []protocols.Protocol {
	return []protocols.Protocol{
		http.Protocol{}, http2.Protocol{},
		dns.Protocol{},
		pgsql.Protocol{}, mysql.Protocol{}, redis.Protocol{},
		nats.Protocol{}, amqp.Protocol{},
		cql.Protocol{},
		kafka.Protocol{},
		mongodb.Protocol{},
	}
}
