package tokenizer

import (
	"strings"
	"sync"
)

// bpeCache remembers the ids of recent words: natural text repeats words a
// lot and merging is the slow part. It is sharded so that concurrent
// encoders rarely wait on the same lock, and bounded: a full shard is simply
// emptied, which keeps memory flat without the bookkeeping of an LRU.
type bpeCache struct {
	limit  int // entries per shard
	shards [bpeCacheShards]bpeCacheShard
}

const (
	bpeCacheShards = 16
	// bpeCacheMaxWord bounds the words worth caching (bytes); Hugging Face
	// uses the same kind of bound so that one huge word cannot fill the cache.
	bpeCacheMaxWord = 256
)

type bpeCacheShard struct {
	mu sync.Mutex
	m  map[string][]int
}

// newBPECache makes a cache of about capacity words; 0 disables it.
func newBPECache(capacity int) *bpeCache {
	if capacity <= 0 {
		return nil
	}
	c := &bpeCache{limit: max(1, capacity/bpeCacheShards)}
	for i := range c.shards {
		c.shards[i].m = make(map[string][]int)
	}
	return c
}

// shard picks a shard from a cheap mix of the word's length and end bytes:
// it only spreads lock contention, the map hashes the word properly anyway.
func (c *bpeCache) shard(word string) *bpeCacheShard {
	h := uint(len(word))
	if len(word) > 0 {
		h = h*31 + uint(word[0])
		h = h*31 + uint(word[len(word)-1])
	}
	return &c.shards[h%bpeCacheShards]
}

// get returns the cached ids of word; callers must not modify them.
func (c *bpeCache) get(word string) ([]int, bool) {
	if c == nil || len(word) > bpeCacheMaxWord {
		return nil, false
	}
	s := c.shard(word)
	s.mu.Lock()
	ids, ok := s.m[word]
	s.mu.Unlock()
	return ids, ok
}

// put stores a copy of word (it may be a slice of a long text) with its ids.
func (c *bpeCache) put(word string, ids []int) {
	if c == nil || len(word) > bpeCacheMaxWord {
		return
	}
	ids = append([]int(nil), ids...)
	s := c.shard(word)
	s.mu.Lock()
	if len(s.m) >= c.limit {
		clear(s.m)
	}
	s.m[strings.Clone(word)] = ids
	s.mu.Unlock()
}
