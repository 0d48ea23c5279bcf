package kafka

import "sync"

// topicCache remembers the names of topic ids from the Metadata (and
// CreateTopics) responses the tracer sees, so that the requests of newer
// versions, which name topics by id only (Produce v13, Fetch v13+,
// OffsetCommit v10, OffsetFetch v10), can show their names too. A client
// asks for metadata before it produces or fetches, often on another
// connection, so the cache is shared by every connection.
type topicCache struct {
	mu    sync.Mutex
	names map[[16]byte]string
}

// maxTopics bounds the cache; when full it starts over.
const maxTopics = 4096

var topics = &topicCache{names: map[[16]byte]string{}}

func (c *topicCache) put(id [16]byte, name []byte) {
	if id == ([16]byte{}) {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := c.names[id]; ok && old == string(name) {
		return
	}
	if len(c.names) >= maxTopics {
		clear(c.names)
	}
	c.names[id] = string(name)
}

func (c *topicCache) get(id [16]byte) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s, ok := c.names[id]
	return s, ok
}
