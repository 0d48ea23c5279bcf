package realclient

import (
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/gocql/gocql"
)

// users are the rows the session inserts: the first two one by one, the
// others in a batch.
var users = []struct {
	id   string
	name string
	age  int
}{
	{"6ba7b810-9dad-11d1-80b4-00c04fd430c8", "ann", 41},
	{"6ba7b811-9dad-11d1-80b4-00c04fd430c8", "bob", 29},
	{"6ba7b812-9dad-11d1-80b4-00c04fd430c8", "cy", 33},
	{"6ba7b814-9dad-11d1-80b4-00c04fd430c8", "di", 57},
}

// session runs gocql against the responder at addr with protocol
// version proto: one connection for the control and one for queries.
func session(t *testing.T, addr string, proto int) {
	host, p, _ := net.SplitHostPort(addr)
	port, _ := strconv.Atoi(p)
	cluster := gocql.NewCluster(host)
	cluster.Port = port
	cluster.ProtoVersion = proto
	cluster.NumConns = 1
	cluster.Consistency = gocql.Quorum
	cluster.Timeout = 5 * time.Second
	cluster.ConnectTimeout = 5 * time.Second
	s, err := cluster.CreateSession()
	if err != nil {
		t.Fatalf("v%d: connect: %v", proto, err)
	}
	defer s.Close()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("v%d: %v", proto, err)
		}
	}
	uuid := func(s string) gocql.UUID { u, err := gocql.ParseUUID(s); must(err); return u }
	must(s.Query(qCreate).Exec())
	for _, u := range users[:2] {
		must(s.Query(qInsert, uuid(u.id), u.name, u.age).Exec())
	}
	b := s.NewBatch(gocql.LoggedBatch)
	for _, u := range users[2:] {
		b.Query(qInsert, uuid(u.id), u.name, u.age)
	}
	must(s.ExecuteBatch(b))
	var name string
	var age int
	must(s.Query(qSelectOne, uuid(users[1].id)).Scan(&name, &age))
	if name != users[1].name || age != users[1].age {
		t.Fatalf("v%d: selected %q %d", proto, name, age)
	}
	iter := s.Query(qSelectAll).Iter()
	var names []string
	for iter.Scan(&name) {
		names = append(names, name)
	}
	must(iter.Close())
	if len(names) != len(users) {
		t.Fatalf("v%d: selected %v", proto, names)
	}
	if err := s.Query(qMissing).Exec(); err == nil || err.Error() != errUnconf {
		t.Fatalf("v%d: the missing table: %v", proto, err)
	}
}
