package engine

import "slices"

// parkedCache is a finished sequence's KV cache, left in its slot for the
// next request of the same conversation (Request.CacheKey). A bot's next
// prompt is usually the last one plus the reply and a new message, so most
// of it is already there.
type parkedCache struct {
	key    string
	job    *job  // the request it came from
	slot   int   // held by the cache, not free
	tokens []int // what the slot's cache holds, in order
}

// park moves q's slot to the parked caches of its conversation, replacing
// those of earlier requests.
func (s *scheduler) park(q *sequence) {
	s.decoding = slices.DeleteFunc(s.decoding, func(x *sequence) bool { return x == q })
	if !q.ownsSlot {
		return
	}
	key := q.job.req.CacheKey
	s.dropParked(func(p *parkedCache) bool { return p.key == key && p.job != q.job })
	q.ownsSlot = false
	// The last sampled token was never fed to the model: the cache holds the rest.
	s.parked = append(s.parked, &parkedCache{key: key, job: q.job, slot: q.slot, tokens: q.ids[:len(q.ids)-1]})
}

// keepBestParked keeps only the parked cache of j's likeliest candidate,
// the one a Generator picks (pickReply): the next prompt continues that
// reply, and the others would only take slots from other chats' caches.
// Any of them holds the whole prompt, so a different pick still reuses that.
func (s *scheduler) keepBestParked(j *job, out []Completion) {
	best := 0
	for i, c := range out {
		if c.MeanLogProb > out[best].MeanLogProb {
			best = i
		}
	}
	keep := j.seqs[best].slot
	s.dropParked(func(p *parkedCache) bool { return p.job == j && p.slot != keep })
}

// bestParked finds the parked cache of j's conversation sharing the longest
// prefix with j's prompt, and that length. At least the prompt's last token
// is left to run, since its logits give the first new token.
func (s *scheduler) bestParked(j *job) (*parkedCache, int) {
	if j.req.CacheKey == "" {
		return nil, 0
	}
	var best *parkedCache
	shared := 0
	for _, p := range s.parked {
		if p.key != j.req.CacheKey {
			continue
		}
		n := min(commonPrefix(p.tokens, j.req.Prompt), len(j.req.Prompt)-1)
		if n > shared {
			best, shared = p, n
		}
	}
	return best, shared
}

func commonPrefix(a, b []int) int {
	n := min(len(a), len(b))
	for i := range n {
		if a[i] != b[i] {
			return i
		}
	}
	return n
}

// unpark hands p's slot to its new owner without resetting it.
func (s *scheduler) unpark(p *parkedCache) {
	s.parked = slices.DeleteFunc(s.parked, func(x *parkedCache) bool { return x == p })
}

// dropParked frees the slots of the parked caches that match.
func (s *scheduler) dropParked(match func(*parkedCache) bool) {
	s.parked = slices.DeleteFunc(s.parked, func(p *parkedCache) bool {
		if match(p) {
			s.freeSlot(p.slot)
			return true
		}
		return false
	})
}

// evictParked frees the slots of the n oldest parked caches other than
// keep. s.parked is in the order they were parked: appends and deletions
// keep it so.
func (s *scheduler) evictParked(n int, keep *parkedCache) {
	evicted := 0
	s.dropParked(func(p *parkedCache) bool {
		if p == keep || evicted == n {
			return false
		}
		evicted++
		return true
	})
}
