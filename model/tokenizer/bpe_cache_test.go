package tokenizer

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

func TestBPECache(t *testing.T) {
	tests := []struct {
		name   string
		word   string
		cached bool
	}{
		{"short word", "привет", true},
		{"longest cached word", strings.Repeat("a", bpeCacheMaxWord), true},
		{"too long to cache", strings.Repeat("a", bpeCacheMaxWord+1), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newBPECache(64)
			ids := []int{1, 2, 3}
			c.put(tt.word, ids)
			ids[0] = 99 // the cache must hold its own copy
			got, ok := c.get(tt.word)
			if ok != tt.cached {
				t.Fatalf("get ok = %v, want %v", ok, tt.cached)
			}
			if ok && !slices.Equal(got, []int{1, 2, 3}) {
				t.Errorf("get = %v, want [1 2 3]", got)
			}
		})
	}
}

func TestBPECacheBounded(t *testing.T) {
	c := newBPECache(64)
	for i := range 10000 {
		c.put(fmt.Sprint("w", i), []int{i})
	}
	for i := range c.shards {
		if n := len(c.shards[i].m); n > c.limit {
			t.Errorf("shard %d holds %d words, limit %d", i, n, c.limit)
		}
	}
	if _, ok := newBPECache(0).get("a"); ok {
		t.Error("a disabled cache returned a word")
	}
}
