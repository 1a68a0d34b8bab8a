package torch_test

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/dialogbot/dialogbot/internal/testfile"
	"github.com/dialogbot/dialogbot/internal/testmodel"
	"github.com/dialogbot/dialogbot/torch"
)

func load(tb testing.TB, dir string, slots int) *torch.Module {
	tb.Helper()
	return loadThreads(tb, dir, slots, 0)
}

func loadThreads(tb testing.TB, dir string, slots, threads int) *torch.Module {
	tb.Helper()
	return loadOpts(tb, dir, slots, threads, testmodel.Device(), "float32")
}

func loadDtype(tb testing.TB, dir string, slots int, device, dtype string) *torch.Module {
	tb.Helper()
	return loadOpts(tb, dir, slots, 0, device, dtype)
}

func loadOpts(tb testing.TB, dir string, slots, threads int, device, dtype string) *torch.Module {
	tb.Helper()
	var meta struct {
		NLayer     int `json:"n_layer"`
		NHead      int `json:"n_head"`
		HeadDim    int `json:"head_dim"`
		VocabSize  int `json:"vocab_size"`
		NPositions int `json:"n_positions"`
	}
	testfile.ReadJSON(tb, filepath.Join(dir, "dialogbot.json"), &meta)
	m, err := torch.Load(torch.Options{
		Path:   filepath.Join(dir, "model.pt"),
		Shape:  torch.Shape{Layers: meta.NLayer, Heads: meta.NHead, HeadDim: meta.HeadDim, Vocab: meta.VocabSize, Positions: meta.NPositions},
		Device: device, Dtype: dtype, Slots: slots, Threads: threads,
	})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { m.Close() })
	return m
}

func toInt64(ids []int) []int64 {
	out := make([]int64, len(ids))
	for i, id := range ids {
		out[i] = int64(id)
	}
	return out
}

// prefill runs a whole prompt in slot 0 and returns the full last logits.
func prefill(tb testing.TB, m *torch.Module, slot int, ids []int) []float32 {
	tb.Helper()
	out := torch.StepOutput{K: 0}
	in := torch.StepInput{Slots: []int32{int32(slot)}, NTokens: []int32{int32(len(ids))}, Tokens: toInt64(ids)}
	if err := m.Step(in, &out); err != nil {
		tb.Fatal(err)
	}
	return append([]float32(nil), out.Logits...)
}

// greedy continues slot 0 for n tokens with K=1 steps, stopping after any stop id.
func greedy(tb testing.TB, m *torch.Module, first int, n int, stop map[int]bool) []int {
	tb.Helper()
	out := torch.StepOutput{K: 1}
	got := []int{first}
	for len(got) < n && !stop[got[len(got)-1]] {
		in := torch.StepInput{Slots: []int32{0}, NTokens: []int32{1}, Tokens: []int64{int64(got[len(got)-1])}}
		if err := m.Step(in, &out); err != nil {
			tb.Fatal(err)
		}
		got = append(got, int(out.IDs[0]))
	}
	return got
}

func argmax(x []float32) int {
	best := 0
	for i, v := range x {
		if v > x[best] {
			best = i
		}
	}
	return best
}

func maxAbsDiff(a []float32, b []float64) float64 {
	d := 0.0
	for i := range a {
		d = math.Max(d, math.Abs(float64(a[i])-b[i]))
	}
	return d
}

type tinyGolden struct {
	Cases []struct {
		Text       string    `json:"text"`
		IDs        []int     `json:"ids"`
		LastLogits []float64 `json:"last_logits"`
		SumPerPos  []float64 `json:"logits_sum_per_position"`
		Greedy16   []int     `json:"greedy16"`
	} `json:"cases"`
}

// tinyModel exports tiny-gpt2 for the bridge and reads its HF golden outputs.
func tinyModel(t *testing.T) (dir string, g tinyGolden) {
	t.Helper()
	testmodel.RequireBridge(t)
	dir = testmodel.Export(t, "tiny-gpt2")
	testfile.ReadJSON(t, filepath.Join(testmodel.SharedDir(t), "models", "tiny-gpt2", "golden.json"), &g)
	return dir, g
}

func TestTinyGPT2MatchesHuggingFace(t *testing.T) {
	dir, g := tinyModel(t)
	m := load(t, dir, 2)
	for _, c := range g.Cases {
		t.Run(c.Text, func(t *testing.T) {
			if err := m.SetLength(0, 0); err != nil {
				t.Fatal(err)
			}
			logits := prefill(t, m, 0, c.IDs)
			if d := maxAbsDiff(logits, c.LastLogits); d > 1e-4 {
				t.Errorf("last logits differ from HF by %g (limit 1e-4)", d)
			}
			got := greedy(t, m, argmax(logits), 16, nil)
			if !equalInts(got, c.Greedy16) {
				t.Errorf("greedy16 = %v, want %v", got, c.Greedy16)
			}
		})
	}
}

// TestCachedDecodeMatchesFullForward feeds each prompt one token at a time
// through the cache and checks every position's logit sum against HF's full
// forward, and the last logits against the one-shot prefill.
func TestCachedDecodeMatchesFullForward(t *testing.T) {
	dir, g := tinyModel(t)
	m := load(t, dir, 1)
	for _, c := range g.Cases {
		if err := m.SetLength(0, 0); err != nil {
			t.Fatal(err)
		}
		out := torch.StepOutput{K: 0}
		for i, id := range c.IDs {
			in := torch.StepInput{Slots: []int32{0}, NTokens: []int32{1}, Tokens: []int64{int64(id)}}
			if err := m.Step(in, &out); err != nil {
				t.Fatal(err)
			}
			sum := 0.0
			for _, v := range out.Logits {
				sum += float64(v)
			}
			if math.Abs(sum-c.SumPerPos[i]) > 1e-2 {
				t.Errorf("%q position %d: logit sum %g, HF %g", c.Text, i, sum, c.SumPerPos[i])
			}
		}
		if d := maxAbsDiff(out.Logits, c.LastLogits); d > 1e-4 {
			t.Errorf("%q: token-by-token last logits differ from HF by %g", c.Text, d)
		}
	}
}

// TestBatchRowsMatchAlone runs prompts of different lengths in one batch,
// in scattered slots, and checks each row against the same prompt run alone.
func TestBatchRowsMatchAlone(t *testing.T) {
	dir, g := tinyModel(t)
	m := load(t, dir, 8)
	// Scattered slots are gathered; consecutive ones (not from 0) are read in place.
	for _, slots := range [][]int32{{5, 1, 3}, {2, 3, 4}} {
		t.Run(fmt.Sprint(slots), func(t *testing.T) {
			for s := range m.Slots() {
				if err := m.SetLength(s, 0); err != nil {
					t.Fatal(err)
				}
			}
			batchRowsMatchAlone(t, m, g, slots)
		})
	}
}

func batchRowsMatchAlone(t *testing.T, m *torch.Module, g tinyGolden, slots []int32) {
	in := torch.StepInput{Slots: slots}
	for _, c := range g.Cases {
		in.NTokens = append(in.NTokens, int32(len(c.IDs)))
		in.Tokens = append(in.Tokens, toInt64(c.IDs)...)
	}
	out := torch.StepOutput{K: 0}
	if err := m.Step(in, &out); err != nil {
		t.Fatal(err)
	}
	v := m.Vocab()
	for i, c := range g.Cases {
		if d := maxAbsDiff(out.Logits[i*v:(i+1)*v], c.LastLogits); d > 1e-4 {
			t.Errorf("row %d (%q) differs from HF by %g", i, c.Text, d)
		}
	}
	// One decode step for all rows at different cache lengths.
	next := torch.StepInput{Slots: slots, NTokens: []int32{1, 1, 1}, Tokens: []int64{7, 8, 9}}
	if err := m.Step(next, &out); err != nil {
		t.Fatal(err)
	}
	batched := append([]float32(nil), out.Logits...)
	for i, c := range g.Cases {
		if err := m.SetLength(0, 0); err != nil {
			t.Fatal(err)
		}
		alone := prefill(t, m, 0, append(append([]int(nil), c.IDs...), 7+i))
		var want []float64
		for _, x := range alone {
			want = append(want, float64(x))
		}
		if d := maxAbsDiff(batched[i*v:(i+1)*v], want); d > 1e-4 {
			t.Errorf("row %d decode differs from running alone by %g", i, d)
		}
	}
}

func TestTopKAndLogits(t *testing.T) {
	testmodel.RequireBridge(t)
	dir := testmodel.Export(t, "tiny-gpt2")
	m := load(t, dir, 2)
	in := torch.StepInput{Slots: []int32{0, 1}, NTokens: []int32{2, 1}, Tokens: []int64{1, 3316, 2}}
	top := torch.StepOutput{K: 5}
	if err := m.Step(in, &top); err != nil {
		t.Fatal(err)
	}
	full, err := m.Logits([]int32{1, 0}, nil)
	if err != nil {
		t.Fatal(err)
	}
	v := m.Vocab()
	for row, fullRow := range [][]float32{full[v:], full[:v]} {
		lse := 0.0
		for _, x := range fullRow {
			lse += math.Exp(float64(x))
		}
		if d := math.Abs(math.Log(lse) - float64(top.LSE[row])); d > 1e-4 {
			t.Errorf("row %d: lse %g, want %g", row, top.LSE[row], math.Log(lse))
		}
		for j := 0; j < 5; j++ {
			id, val := top.IDs[row*5+j], top.Logits[row*5+j]
			if fullRow[id] != val {
				t.Errorf("row %d top %d: id %d logit %g, full logits say %g", row, j, id, val, fullRow[id])
			}
			if j > 0 && val > top.Logits[row*5+j-1] {
				t.Errorf("row %d: top-k not in descending order", row)
			}
		}
		if argmax(fullRow) != int(top.IDs[row*5]) {
			t.Errorf("row %d: top-1 %d is not the argmax %d", row, top.IDs[row*5], argmax(fullRow))
		}
	}
}

func TestCopySlotContinuesTheSameWay(t *testing.T) {
	testmodel.RequireBridge(t)
	m := load(t, testmodel.Export(t, "tiny-gpt2"), 3)
	prefill(t, m, 0, []int{1, 3316, 223, 2})
	if err := m.CopySlot(0, 2); err != nil {
		t.Fatal(err)
	}
	out := torch.StepOutput{K: 3}
	if err := m.Step(torch.StepInput{Slots: []int32{0, 2}, NTokens: []int32{1, 1}, Tokens: []int64{42, 42}}, &out); err != nil {
		t.Fatal(err)
	}
	for j := 0; j < 3; j++ {
		if out.IDs[j] != out.IDs[3+j] || out.Logits[j] != out.Logits[3+j] {
			t.Fatalf("copied slot diverges: %v vs %v", out.Logits[:3], out.Logits[3:])
		}
	}
}

type nanoGolden struct {
	Cases []struct {
		PromptIDs  []int     `json:"prompt_ids"`
		GreedyIDs  []int     `json:"greedy_ids"`
		GreedyText string    `json:"greedy_text"`
		TopIDs     []int     `json:"last_logits_top10_ids"`
		TopLogits  []float64 `json:"last_logits_top10"`
	} `json:"cases"`
}

// ReplyStops are the ids that end a reply in nano-ru's format.
var replyStops = map[int]bool{0: true, 1: true, 2: true}

// untilStop cuts ids after the first stop id (kept).
func untilStop(ids []int) []int {
	for i, id := range ids {
		if replyStops[id] {
			return ids[:i+1]
		}
	}
	return ids
}

func TestNanoRuGreedyMatchesHuggingFace(t *testing.T) {
	testmodel.RequireBridge(t)
	dir := testmodel.Export(t, "nano-ru")
	var g nanoGolden
	testfile.ReadJSON(t, filepath.Join(testmodel.SharedDir(t), "models", "nano-ru", "golden.json"), &g)
	m := load(t, dir, 1)
	for _, c := range g.Cases {
		t.Run(strings.TrimSpace(c.GreedyText), func(t *testing.T) {
			if err := m.SetLength(0, 0); err != nil {
				t.Fatal(err)
			}
			logits := prefill(t, m, 0, c.PromptIDs)
			for j, id := range c.TopIDs {
				if d := math.Abs(float64(logits[id]) - c.TopLogits[j]); d > 1e-3 {
					t.Errorf("top-%d logit of id %d: %g, HF %g", j, id, logits[id], c.TopLogits[j])
				}
			}
			if argmax(logits) != c.TopIDs[0] {
				t.Errorf("argmax %d, HF %d", argmax(logits), c.TopIDs[0])
			}
			got := greedy(t, m, argmax(logits), 24, replyStops)
			if want := untilStop(c.GreedyIDs); !equalInts(got, want) {
				t.Errorf("greedy = %v, want %v", got, want)
			}
		})
	}
}

func TestLoadErrors(t *testing.T) {
	testmodel.RequireBridge(t)
	dir := testmodel.Export(t, "tiny-gpt2")
	corrupt := filepath.Join(t.TempDir(), "model.pt")
	if err := os.WriteFile(corrupt, []byte("not a torchscript file"), 0o644); err != nil {
		t.Fatal(err)
	}
	shape := torch.Shape{Layers: 2, Heads: 4, HeadDim: 8, Vocab: 16000, Positions: 64}
	cases := []struct {
		name string
		opts torch.Options
		want string
	}{
		{"missing file", torch.Options{Path: filepath.Join(t.TempDir(), "nope.pt"), Shape: shape, Slots: 1}, "no such file"},
		{"corrupt file", torch.Options{Path: corrupt, Shape: shape, Slots: 1, Device: "cpu"}, "cannot read TorchScript file"},
		{"unknown device", torch.Options{Path: filepath.Join(dir, "model.pt"), Shape: shape, Slots: 1, Device: "tpu"}, "unknown device"},
		{"bad capacity", torch.Options{Path: filepath.Join(dir, "model.pt"), Shape: shape, Slots: 1, Device: "cpu", Capacity: 65}, "capacity"},
		{"no slots", torch.Options{Path: filepath.Join(dir, "model.pt"), Shape: shape, Device: "cpu"}, "slots"},
	}
	if n, _ := torch.CUDADevices(); n == 0 {
		cases = append(cases, struct {
			name string
			opts torch.Options
			want string
		}{"cuda absent", torch.Options{Path: filepath.Join(dir, "model.pt"), Shape: shape, Slots: 1, Device: "cuda"}, "CUDA"})
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m, err := torch.Load(c.opts)
			if err == nil {
				m.Close()
				t.Fatalf("no error, want one containing %q", c.want)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q does not mention %q", err, c.want)
			}
		})
	}
}

func TestStepErrors(t *testing.T) {
	testmodel.RequireBridge(t)
	m := load(t, testmodel.Export(t, "tiny-gpt2"), 2)
	out := torch.StepOutput{K: 1}
	cases := []struct {
		name string
		in   torch.StepInput
		want string
	}{
		{"slot out of range", torch.StepInput{Slots: []int32{2}, NTokens: []int32{1}, Tokens: []int64{1}}, "out of range"},
		{"token out of range", torch.StepInput{Slots: []int32{0}, NTokens: []int32{1}, Tokens: []int64{16000}}, "token id"},
		{"same slot twice", torch.StepInput{Slots: []int32{0, 0}, NTokens: []int32{1, 1}, Tokens: []int64{1, 1}}, "twice"},
		{"over capacity", torch.StepInput{Slots: []int32{1}, NTokens: []int32{65}, Tokens: make([]int64, 65)}, "capacity"},
		{"counts mismatch", torch.StepInput{Slots: []int32{0}, NTokens: []int32{2}, Tokens: []int64{1}}, "add up"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := m.Step(c.in, &out)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want one containing %q", err, c.want)
			}
		})
	}
	// The module still works after errors.
	if err := m.Step(torch.StepInput{Slots: []int32{0}, NTokens: []int32{1}, Tokens: []int64{1}}, &out); err != nil {
		t.Fatal(err)
	}
	m.Close()
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestResolveDevice(t *testing.T) {
	testmodel.RequireBridge(t)
	if _, err := torch.ResolveDevice("gpu"); err == nil {
		t.Error("gpu accepted")
	}
	d, err := torch.ResolveDevice("auto")
	if err != nil {
		t.Fatal(err)
	}
	n, _ := torch.CUDADevices()
	if want := map[bool]string{true: "cuda", false: "cpu"}[n > 0]; d != want {
		t.Errorf("auto = %s, want %s", d, want)
	}
}

func TestRuntimeInfoIsTyped(t *testing.T) {
	testmodel.RequireBridge(t)
	info, err := torch.RuntimeInfo()
	if err != nil {
		t.Fatal(err)
	}
	t.Log(info)
	if !regexp.MustCompile(`^\d+\.\d+\.\d+$`).MatchString(info.TorchVersion) {
		t.Errorf("torch version %q", info.TorchVersion)
	}
	if info.IntraOpThreads < 1 || info.QuantizedEngine == "" || len(info.QuantizedEngines) == 0 || info.ParallelBackend == "" {
		t.Errorf("incomplete runtime info %+v", info)
	}
	if n, _ := torch.CUDADevices(); n != info.CUDADevices {
		t.Errorf("CUDA devices %d, CUDADevices() %d", info.CUDADevices, n)
	}
	if want, set := os.LookupEnv("OMP_WAIT_POLICY"); set && info.OMPWaitPolicy != want || !set && info.OMPWaitPolicy != "PASSIVE" {
		t.Errorf("OMP wait policy %q", info.OMPWaitPolicy)
	}
	if info.Bridge == "" || !strings.Contains(info.String(), info.QuantizedEngine) {
		t.Errorf("bridge %q, text %q", info.Bridge, info)
	}
}

// TestModuleThreadsAreReported: the thread count given at load is the one
// the module's own thread reports (OpenMP keeps it per thread).
func TestModuleThreadsAreReported(t *testing.T) {
	testmodel.RequireBridge(t)
	if testmodel.Device() != "cpu" {
		t.Skip("threads are a CPU setting")
	}
	m := loadThreads(t, testmodel.Export(t, "tiny-gpt2"), 1, 1)
	info, err := m.RuntimeInfo()
	if err != nil || info.IntraOpThreads != 1 {
		t.Errorf("module runtime info %+v, %v; want 1 intra-op thread", info, err)
	}
}

// TestCallsAfterCloseReturnErrClosed: every method of a closed module
// returns ErrClosed instead of panicking, and Close stays idempotent.
func TestCallsAfterCloseReturnErrClosed(t *testing.T) {
	testmodel.RequireBridge(t)
	m := load(t, testmodel.Export(t, "tiny-gpt2"), 2)
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	out := torch.StepOutput{K: 1}
	calls := map[string]func() error{
		"Step": func() error {
			return m.Step(torch.StepInput{Slots: []int32{0}, NTokens: []int32{1}, Tokens: []int64{1}}, &out)
		},
		"Logits":    func() error { _, err := m.Logits([]int32{0}, nil); return err },
		"SetLength": func() error { return m.SetLength(0, 0) },
		"CopySlot":  func() error { return m.CopySlot(0, 1) },
		"RuntimeInfo": func() error {
			_, err := m.RuntimeInfo()
			return err
		},
	}
	for name, call := range calls {
		if err := call(); !errors.Is(err, torch.ErrClosed) {
			t.Errorf("%s after Close: %v, want ErrClosed", name, err)
		}
	}
	if err := m.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// TestCloseWithCallsInFlight closes a module while goroutines step it (run
// with -race): each call either completes or returns ErrClosed.
func TestCloseWithCallsInFlight(t *testing.T) {
	testmodel.RequireBridge(t)
	m := load(t, testmodel.Export(t, "tiny-gpt2"), 4)
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	started := make(chan struct{}, 4)
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out := torch.StepOutput{K: 1}
			for i := 0; ; i++ {
				if err := m.SetLength(g, 0); err != nil {
					errs <- err
					return
				}
				err := m.Step(torch.StepInput{Slots: []int32{int32(g)}, NTokens: []int32{1}, Tokens: []int64{int64(i % 100)}}, &out)
				if err != nil {
					errs <- err
					return
				}
				if i == 0 {
					started <- struct{}{}
				}
			}
		}()
	}
	for range 4 {
		<-started
	}
	var closers sync.WaitGroup
	for range 2 {
		closers.Add(1)
		go func() { defer closers.Done(); m.Close() }()
	}
	closers.Wait()
	wg.Wait()
	close(errs)
	for err := range errs {
		if !errors.Is(err, torch.ErrClosed) {
			t.Errorf("call during Close: %v, want ErrClosed", err)
		}
	}
}

func TestErrNoBridgeIsClear(t *testing.T) {
	if torch.Available() == nil {
		t.Skip("bridge present")
	}
	if err := torch.Available(); !errors.Is(err, torch.ErrNoBridge) || !strings.Contains(err.Error(), "make bridge") {
		t.Errorf("error %v does not say how to build the bridge", err)
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestNanoRuInt8KeepsGolden runs nano-ru's int8 export (export --quantize
// int8) through the bridge: prompts take the quantized engine's path (many
// rows), decode steps the one-row kernel. Rounding the weights may flip a
// near tie late in a reply, so all top-1 tokens must stay and most replies.
func TestNanoRuInt8KeepsGolden(t *testing.T) {
	testmodel.RequireBridge(t)
	if testmodel.Device() != "cpu" {
		t.Skip("int8 exports run on the CPU only")
	}
	dir := testmodel.Export(t, "nano-ru", "--quantize", "int8")
	var g nanoGolden
	testfile.ReadJSON(t, filepath.Join(testmodel.SharedDir(t), "models", "nano-ru", "golden.json"), &g)
	m := loadDtype(t, dir, 1, "cpu", "")
	sameTop, sameReply := 0, 0
	for _, c := range g.Cases {
		if err := m.SetLength(0, 0); err != nil {
			t.Fatal(err)
		}
		logits := prefill(t, m, 0, c.PromptIDs)
		if argmax(logits) == c.TopIDs[0] {
			sameTop++
		}
		if equalInts(greedy(t, m, argmax(logits), 24, replyStops), untilStop(c.GreedyIDs)) {
			sameReply++
		}
	}
	t.Logf("int8 through the bridge: top-1 %d/%d, greedy replies %d/%d equal to float32 HF", sameTop, len(g.Cases), sameReply, len(g.Cases))
	if sameTop != len(g.Cases) || 2*sameReply < len(g.Cases) {
		t.Errorf("int8 kept top-1 on %d and greedy replies on %d of %d golden prompts", sameTop, sameReply, len(g.Cases))
	}
}
