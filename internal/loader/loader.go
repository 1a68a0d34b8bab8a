package loader

import (
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"runtime"

	"github.com/dialogbot/dialogbot/internal/config"
	"github.com/dialogbot/dialogbot/model/dialog"
	"github.com/dialogbot/dialogbot/model/engine"
	"github.com/dialogbot/dialogbot/model/sample"
	"github.com/dialogbot/dialogbot/model/tokenizer"

	"github.com/dialogbot/dialogbot/model"
	"github.com/dialogbot/dialogbot/torch"
)

// Options say which exported model to load and how.
type Options struct {
	Dir          string
	Device       config.Device
	Dtype        config.DType // "" or auto: as exported
	Threads      int          // CPU threads for libtorch; 0: all cores
	PromptFormat string       // "" : the model's own (dialogbot.json)
	Slots        int          // sequences decoded at once
	MaxContext   int          // tokens per sequence; 0: the model's, at most defaultMaxContext
	// Instrument, when set, wraps the model as the engine sees it (bench
	// times the bridge calls this way).
	Instrument func(engine.Stepper) engine.Stepper
}

// defaultMaxContext bounds the KV cache per sequence when the config does
// not: ruDialoGPT-small allows 2,048 positions, and a bot's prompt (the last
// few turns) rarely needs more than a few hundred.
const defaultMaxContext = 1024

// Model is everything serving needs from a model directory.
type Model struct {
	// WeightsFile is the file loaded (model.pt or the int8 copy) and
	// WeightsWhy the reason, as the start-up log says them.
	WeightsFile, WeightsWhy string

	Meta      model.Meta
	Tokenizer *tokenizer.Tokenizer
	Module    *torch.Module
	Engine    *engine.Engine
}

func Open(o Options, log *slog.Logger) (*Model, error) {
	if o.Dir == "" {
		return nil, errors.New("no model directory given (model.path or --model)")
	}
	meta, err := model.LoadMeta(o.Dir)
	if err != nil {
		return nil, err
	}
	if o.PromptFormat != "" {
		if _, err := dialog.ParseFormat(o.PromptFormat); err != nil {
			return nil, err
		}
		meta.PromptFormat = o.PromptFormat
	}
	tok, err := tokenizer.LoadTokenizer(filepath.Join(o.Dir, model.TokenizerFile))
	if err != nil {
		return nil, err
	}
	device, err := deviceFor(meta, o.Device)
	if err != nil {
		return nil, err
	}
	resolved, err := torch.ResolveDevice(string(device))
	if err != nil {
		return nil, err
	}
	o.Device = config.Device(resolved)
	rt, err := torch.RuntimeInfo()
	if err != nil {
		return nil, err
	}
	weights := chooseWeights(meta, o.Dtype, o.Device, rt)
	log.Info("model weights", "file", weights.File, "why", weights.Why)
	if weights.Int8 {
		meta.Quantize, meta.CPUOnly = "int8", true
	}
	mod, err := torch.Load(torchOptions(o, meta, weights.File))
	if err != nil {
		return nil, err
	}
	if err := warmUp(mod, meta); err != nil {
		mod.Close()
		return nil, err
	}
	if info, err := mod.RuntimeInfo(); err == nil {
		log.Info("libtorch", "device", mod.Device(), "runtime", info)
		if hint := int8EngineHint(meta, info); hint != "" {
			log.Warn(hint)
		}
	}
	var stepper engine.Stepper = TorchStepper{mod}
	if o.Instrument != nil {
		stepper = o.Instrument(stepper)
	}
	eng := engine.NewEngine(stepper, EngineOptions(config.Device(mod.Device())))
	return &Model{WeightsFile: weights.File, WeightsWhy: weights.Why, Meta: meta, Tokenizer: tok, Module: mod, Engine: eng}, nil
}

// ErrCPUOnly: the model has CPU kernels only (dynamic int8), and a GPU was asked for.
var ErrCPUOnly = errors.New("this model runs on the CPU only")

// deviceFor picks the CPU for CPU-only models when the device is left to
// "auto", which would otherwise choose a GPU their layers cannot run on.
func deviceFor(meta model.Meta, requested config.Device) (config.Device, error) {
	if !meta.CPUOnly {
		return requested, nil
	}
	if !requested.IsCUDA() {
		return config.DeviceCPU, nil
	}
	return "", fmt.Errorf("%w (its Linear layers are %s-quantized), but device %q was asked for: use device cpu, "+
		"or export the model again without --quantize", ErrCPUOnly, meta.Quantize, requested)
}

// int8EngineHint warns when an int8 export runs where int8 does not pay:
// its one-row kernel (the decode step of one chat) needs AVX2 and FMA, and
// without them runs a portable loop slower than float32's BLAS.
func int8EngineHint(meta model.Meta, rt torch.Runtime) string {
	if meta.Quantize != "int8" || rt.Int8AVX2 {
		return ""
	}
	return "this int8 model runs without AVX2/FMA on this CPU, where its kernel is slower than float32: " +
		"export without --quantize, or with --quantize both and model.dtype = \"auto\""
}

// MinInt8Agreement is the least share of export's check rows on which the
// int8 copy must pick the float copy's most likely next token for
// model.dtype = "auto" to use it. nano-ru's copy agrees on 94.5% of random
// rows (random tokens make near ties common) and keeps the top-1 of all 5
// golden prompts; a broken quantization agrees on next to none.
const MinInt8Agreement = 0.9

// weightsChoice is which copy of the weights to load, and why.
type weightsChoice struct {
	File string
	Int8 bool
	Why  string
}

// chooseWeights picks the int8 copy where it is both the fast one and
// exact enough: on a CPU whose int8 kernel has its AVX2 path, when the
// dtype is left to "auto" and export measured it close to the float copy.
func chooseWeights(meta model.Meta, dtype config.DType, device config.Device, rt torch.Runtime) weightsChoice {
	float := func(why string) weightsChoice { return weightsChoice{File: model.WeightsFile, Why: why} }
	c := meta.Int8
	switch {
	case c == nil:
		return float("the model has no int8 copy (export.py --quantize both writes one)")
	case dtype != config.DTypeAuto && dtype != "":
		return float(fmt.Sprintf("model.dtype = %q asks for the float copy", dtype))
	case device != config.DeviceCPU:
		return float(fmt.Sprintf("the int8 copy runs on the CPU only, and the device is %s", device))
	case !rt.Int8AVX2:
		return float("this CPU lacks AVX2/FMA, without which the int8 kernel is slower than float32")
	case c.Top1Agreement < MinInt8Agreement:
		return float(fmt.Sprintf("the int8 copy's top-1 agrees with float32 on only %.1f%% of %d checked rows (want %.0f%%)",
			100*c.Top1Agreement, c.RowsChecked, 100*MinInt8Agreement))
	}
	return weightsChoice{File: c.File, Int8: true, Why: fmt.Sprintf("model.dtype auto on a CPU with AVX2: int8 reads a quarter "+
		"of float32's bytes per decode step (faster, docs/cpu.md), and its top-1 agrees with float32 on %.1f%% of %d checked rows",
		100*c.Top1Agreement, c.RowsChecked)}
}

// EngineOptions bounds the prompt tokens per prefill step by device. On a
// CPU a step costs in proportion to its tokens, so small chunks keep other
// chats' decoding going; a GPU runs thousands of tokens in about the time
// of one, so there small chunks only make new chats wait (measured on an
// H200: 256-token chunks held 256 chats to 180 rows per decode step).
func EngineOptions(device config.Device) engine.EngineOptions {
	if !device.IsCUDA() {
		return engine.EngineOptions{PrefillChunk: 256}
	}
	return engine.EngineOptions{PrefillChunk: 8192}
}

func torchOptions(o Options, meta model.Meta, weightsFile string) torch.Options {
	capacity := o.MaxContext
	if capacity <= 0 {
		capacity = min(meta.NPositions, defaultMaxContext)
	}
	dtype := string(o.Dtype)
	if o.Dtype == config.DTypeAuto {
		dtype = ""
	}
	// libtorch's CPU kernels lack float16 (layer norm among them); an fp16
	// export widens to float32 there, losslessly.
	if dtype == "" && meta.Dtype == "float16" && o.Device == config.DeviceCPU {
		dtype = "float32"
	}
	return torch.Options{
		Path: filepath.Join(o.Dir, weightsFile),
		Shape: torch.Shape{Layers: meta.NLayer, Heads: meta.NHead, HeadDim: meta.HeadDim,
			Vocab: meta.VocabSize, Positions: meta.NPositions},
		Device: string(o.Device), Dtype: dtype, Slots: max(o.Slots, 1), Capacity: min(capacity, meta.NPositions),
		Threads: threads(o.Threads),
	}
}

// Close stops the engine, then frees the model.
func (m *Model) Close() error {
	m.Engine.Close()
	return m.Module.Close()
}

// Generator makes the reply generator for these generation settings.
func (m *Model) Generator(g config.GenerationConfig, greedy bool) (*engine.Generator, error) {
	return NewGenerator(m.Engine, m.Tokenizer, m.Meta.Format(), m.Module.Capacity(), g, greedy)
}

// NewGenerator makes the reply generator of an engine whose sequences hold
// capacity tokens: the prompt gets what the reply leaves of them.
func NewGenerator(eng *engine.Engine, codec engine.TextCodec, f dialog.Format, capacity int, g config.GenerationConfig, greedy bool) (*engine.Generator, error) {
	params := g.Sampling()
	if greedy { // plain argmax, comparable with a reference implementation
		params = sample.SamplingParams{Greedy: true, Temperature: 1, TopP: 1, RepetitionPenalty: 1, MaxNewTokens: g.MaxNewTokens}
	}
	budget := capacity - g.MaxNewTokens
	if budget <= 0 {
		return nil, fmt.Errorf("generation.max_new_tokens %d leaves no room for a prompt in a context of %d", g.MaxNewTokens, capacity)
	}
	return engine.NewGenerator(eng, codec, engine.GeneratorOptions{
		Format:     f,
		Limits:     dialog.PromptLimits{MaxTokens: budget}, // turns: the store applies dialog.Window
		Params:     params,
		Candidates: g.Candidates,
		Seed:       uint64(g.Seed),
		Fallback:   g.FallbackReply,
	})
}

// TorchStepper adapts torch.Module to engine.Stepper: their step types have
// the same fields, so they convert without copying.
type TorchStepper struct{ *torch.Module }

func (s TorchStepper) Step(in engine.StepInput, out *engine.StepOutput) error {
	return s.Module.Step(torch.StepInput(in), (*torch.StepOutput)(out))
}

// warmUp runs two small steps and frees the slot again, so that libtorch's
// one-time start-up (thread pools, kernel selection, the first graph runs)
// is paid when the model loads, not by the first person who writes.
func warmUp(m *torch.Module, meta model.Meta) error {
	out := torch.StepOutput{K: 1}
	eos := int64(meta.EOSTokenID)
	for _, n := range []int{2, 1} {
		tokens := make([]int64, n)
		for i := range tokens {
			tokens[i] = eos
		}
		in := torch.StepInput{Slots: []int32{0}, NTokens: []int32{int32(n)}, Tokens: tokens}
		if err := m.Step(in, &out); err != nil {
			return fmt.Errorf("model warm-up: %w", err)
		}
	}
	return m.SetLength(0, 0)
}

// threads is the CPU thread count for libtorch: all cores unless configured.
func threads(n int) int {
	if n <= 0 {
		return runtime.NumCPU()
	}
	return n
}
