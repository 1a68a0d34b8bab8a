package loader

import (
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"runtime"
	"strings"

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
	mod, err := torch.Load(torchOptions(o, meta))
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
	eng := engine.NewEngine(stepper, engineOptions(mod.Device()))
	return &Model{Meta: meta, Tokenizer: tok, Module: mod, Engine: eng}, nil
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

// int8EngineHint warns when an int8 export runs where int8 does not pay.
// Dynamic int8 is fast with fbgemm (libtorch's X86/FBGEMM engines: 8.9
// against 26.8 ms a token in fp32 on an H200 host's CPU, 2 threads) and
// no faster than fp32 with oneDNN's, the only one Debian's libtorch has.
func int8EngineHint(meta model.Meta, runtimeInfo string) string {
	if meta.Quantize != "int8" {
		return ""
	}
	_, rest, found := strings.Cut(runtimeInfo, "quantized engine ")
	engine, _, _ := strings.Cut(rest, ";")
	if !found || engine == "X86" || engine == "FBGEMM" {
		return ""
	}
	return fmt.Sprintf("this int8 model runs on libtorch's %s quantized engine, where int8 is no faster than float32; "+
		"with fbgemm (the X86 engine of pip's torch) it is 3x faster, or export without --quantize", engine)
}

// engineOptions bounds the prompt tokens per prefill step by device. On a
// CPU a step costs in proportion to its tokens, so small chunks keep other
// chats' decoding going; a GPU runs thousands of tokens in about the time
// of one, so there small chunks only make new chats wait (measured on an
// H200: 256-token chunks held 256 chats to 180 rows per decode step).
func engineOptions(device string) engine.EngineOptions {
	if device == "cpu" {
		return engine.EngineOptions{PrefillChunk: 256}
	}
	return engine.EngineOptions{PrefillChunk: 8192}
}

func torchOptions(o Options, meta model.Meta) torch.Options {
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
		Path: filepath.Join(o.Dir, model.WeightsFile),
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

// generator makes the reply generator for these generation settings.
func (m *Model) Generator(g config.GenerationConfig, greedy bool) (*engine.Generator, error) {
	params := g.Sampling()
	if greedy { // plain argmax, comparable with a reference implementation
		params = sample.SamplingParams{Greedy: true, Temperature: 1, TopP: 1, RepetitionPenalty: 1, MaxNewTokens: g.MaxNewTokens}
	}
	budget := m.Module.Capacity() - g.MaxNewTokens
	if budget <= 0 {
		return nil, fmt.Errorf("generation.max_new_tokens %d leaves no room for a prompt in a context of %d", g.MaxNewTokens, m.Module.Capacity())
	}
	return engine.NewGenerator(m.Engine, m.Tokenizer, engine.GeneratorOptions{
		Format:     m.Meta.Format(),
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
