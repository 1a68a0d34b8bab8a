package engine_test

import (
	"cmp"
	"context"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/dialogbot/dialogbot/model/engine"
	"github.com/dialogbot/dialogbot/model/sample"

	"github.com/dialogbot/dialogbot/internal/fakemodel"
)

// converse runs turns of one conversation: each prompt is the last prompt,
// its reply and a new message, as the bot builds them.
func converse(t *testing.T, e *engine.Engine, key string, turns int, params sample.SamplingParams) [][]int {
	t.Helper()
	var prompt, replies []int
	var out [][]int
	for turn := range turns {
		prompt = append(append(prompt, replies...), prompt2(turn, 5, 50)...)
		c, err := e.Generate(context.Background(), engine.Request{Prompt: slices.Clone(prompt), Params: params, CacheKey: key})
		if err != nil {
			t.Fatalf("turn %d: %v", turn, err)
		}
		replies = c[0].IDs
		out = append(out, c[0].IDs)
	}
	return out
}

func prompt2(seed, n, vocab int) []int { return prompt(seed+100, n, vocab) }

// TestPrefixReuseGivesTheSameReplies: a conversation with a cache key runs
// only the new part of each prompt, and says exactly what it says without.
func TestPrefixReuseGivesTheSameReplies(t *testing.T) {
	fm := fakemodel.New(50, 4, 256)
	e := newEngine(t, fm, engine.EngineOptions{})
	const newTokens = 6
	plain := converse(t, e, "", 4, greedyParams(newTokens))
	waitFree(t, fm)
	before := e.Stats()
	reused := converse(t, e, "chat-1", 4, greedyParams(newTokens))
	if !slices.EqualFunc(plain, reused, slices.Equal) {
		t.Fatalf("replies differ with reuse:\n%v\n%v", plain, reused)
	}
	// Turn t>0 finds the last prompt and all of its reply but the last token
	// (never fed) cached: 3 turns x (5 + 6 - 1) ... grows by 11 a turn.
	st := e.Stats()
	want := int64(0)
	for turn := 1; turn < 4; turn++ {
		want += int64(turn*(5+newTokens) - 1)
	}
	if got := st.ReusedTokens - before.ReusedTokens; got != want {
		t.Errorf("reused %d prompt tokens, want %d", got, want)
	}
	if got, want := st.PromptTokens-before.PromptTokens, int64(5+16+27+38); got != want {
		t.Errorf("prompt tokens %d, want %d", got, want)
	}
	// One slot stays parked, holding exactly the conversation so far.
	used := fm.Used()
	if len(used) != 1 {
		t.Fatalf("parked slots %v, want one", used)
	}
	var all []int64
	var prompt []int
	for turn := range 4 {
		if turn > 0 {
			prompt = append(prompt, reused[turn-1]...)
		}
		prompt = append(prompt, prompt2(turn, 5, 50)...)
	}
	for _, id := range append(prompt, reused[3][:newTokens-1]...) {
		all = append(all, int64(id))
	}
	if got := fm.Tokens(used[0]); !slices.Equal(got, all) {
		t.Errorf("parked cache holds %v,\nwant %v", got, all)
	}
}

// TestPrefixReuseMismatchStartsOver: a prompt that no longer starts like
// the cached one (the history window moved) runs in full, and the stale
// cache is freed.
func TestPrefixReuseMismatchStartsOver(t *testing.T) {
	fm := fakemodel.New(50, 4, 256)
	e := newEngine(t, fm, engine.EngineOptions{})
	run := func(p []int) []int {
		c, err := e.Generate(context.Background(), engine.Request{Prompt: p, Params: greedyParams(4), CacheKey: "k"})
		if err != nil {
			t.Fatal(err)
		}
		return c[0].IDs
	}
	run(prompt(1, 8, 50))
	other := prompt(2, 8, 50)
	before := e.Stats().ReusedTokens
	got := run(other)
	if e.Stats().ReusedTokens != before {
		t.Errorf("reused tokens from an unrelated prompt")
	}
	c, err := e.Generate(context.Background(), engine.Request{Prompt: other, Params: greedyParams(4)})
	if err != nil || !slices.Equal(c[0].IDs, got) {
		t.Fatalf("got %v, want %v (%v)", got, c, err)
	}
	if used := fm.Used(); len(used) != 1 {
		t.Errorf("slots in use %v, want only the newest parked one", used)
	}
	// The same prompt again (a retry) reuses all but its last token.
	before = e.Stats().ReusedTokens
	run(other)
	if n := e.Stats().ReusedTokens - before; n != int64(len(other)-1) {
		t.Errorf("a repeated prompt reused %d tokens, want %d", n, len(other)-1)
	}
}

// TestParkedCachesGiveWay: parked caches never keep a request waiting; with
// every slot parked, new conversations evict the oldest.
func TestParkedCachesGiveWay(t *testing.T) {
	fm := fakemodel.New(50, 3, 128)
	e := newEngine(t, fm, engine.EngineOptions{})
	params := engine.CardSampling()
	params.MaxNewTokens = 5
	first := engine.Request{Prompt: prompt(1, 6, 50), Params: params, Candidates: 3, Seed: 1, CacheKey: "a"}
	out, err := e.Generate(context.Background(), first)
	if err != nil {
		t.Fatal(err)
	}
	// Only the likeliest candidate's cache stays: the reply a Generator picks.
	used := fm.Used()
	if len(used) != 1 {
		t.Fatalf("parked %v, want one slot", used)
	}
	best := slices.MaxFunc(out, func(a, b engine.Completion) int { return cmp.Compare(a.MeanLogProb, b.MeanLogProb) })
	gen := best.IDs
	if !best.Stopped {
		gen = gen[:len(gen)-1] // the last token was never fed
	}
	var want []int64
	for _, id := range slices.Concat(first.Prompt, gen) {
		want = append(want, int64(id))
	}
	if got := fm.Tokens(used[0]); !slices.Equal(got, want) {
		t.Fatalf("parked cache %v, want the likeliest candidate's %v", got, want)
	}
	var wg sync.WaitGroup
	for i := range 6 {
		wg.Go(func() {
			r := engine.Request{Prompt: prompt(10+i, 6, 50), Params: params, Candidates: 1 + i%3, Seed: 2, CacheKey: string(rune('b' + i))}
			if _, err := e.Generate(context.Background(), r); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if used := fm.Used(); len(used) > 3 {
		t.Errorf("slots in use %v", used)
	}
}

// TestOwnSupersededCachesGoFirst: a request frees its own conversation's
// stale cache before evicting another conversation's (found in review).
func TestOwnSupersededCachesGoFirst(t *testing.T) {
	fm := fakemodel.New(50, 2, 200)
	e := newEngine(t, fm, engine.EngineOptions{})
	gen := func(r engine.Request) {
		if _, err := e.Generate(context.Background(), r); err != nil {
			t.Fatal(err)
		}
	}
	px := prompt(1, 8, 50)
	gen(engine.Request{Prompt: px, Params: greedyParams(4), CacheKey: "x"})
	gen(engine.Request{Prompt: prompt(2, 8, 50), Params: greedyParams(4), CacheKey: "a"})
	// Both slots are parked, x's the older. a starts over (nothing shared) and needs one.
	gen(engine.Request{Prompt: prompt(3, 8, 50), Params: greedyParams(4), CacheKey: "a"})
	before := e.Stats().ReusedTokens
	gen(engine.Request{Prompt: slices.Concat(px, []int{1, 2}), Params: greedyParams(4), CacheKey: "x"})
	if e.Stats().ReusedTokens == before {
		t.Error("x's cache was evicted, though a's stale cache was there to free")
	}
}

// TestBrokenSlotsRefuseWhatCannotFit: a slot whose cache cannot be reset
// leaves use; a request that needs more slots than are left gets an error
// instead of waiting forever, and smaller ones still run.
func TestBrokenSlotsRefuseWhatCannotFit(t *testing.T) {
	fm := fakemodel.New(50, 2, 64)
	fm.FailSetLength = func(slot, n int) bool { return slot == 1 && n == 0 }
	e := newEngine(t, fm, engine.EngineOptions{})
	params := engine.CardSampling()
	params.MaxNewTokens = 3
	two := engine.Request{Prompt: prompt(1, 4, 50), Params: params, Candidates: 2, Seed: 1}
	if _, err := e.Generate(context.Background(), two); err != nil {
		t.Fatal(err) // runs, then slot 1 cannot be reset
	}
	_, err := e.Generate(context.Background(), two)
	if err == nil || !strings.Contains(err.Error(), "only 1 of the model's slots are usable") {
		t.Fatalf("err %v, want a refusal naming the usable slots", err)
	}
	if _, err := e.Generate(context.Background(), engine.Request{Prompt: prompt(2, 4, 50), Params: greedyParams(3)}); err != nil {
		t.Fatal(err)
	}
}
