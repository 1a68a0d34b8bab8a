"""Exports a Hugging Face GPT-2 directory to what the Go server loads: OUT/model.pt (a TorchScript
trace of GPT2.step, the cached step the C++ bridge calls), OUT/tokenizer.json and OUT/dialogbot.json.

    /usr/bin/python3 model/python/export.py --hf DIR --out DIR [--dtype float32|float16|bfloat16]
        [--quantize int8|both] [--prompt-format auto|rudialogpt|dialogpt]
    /usr/bin/python3 model/python/export.py --random-shape gpt2-small --tokenizer FILE --out DIR

The step is always traced in float32 on the CPU (torch 1.13's CPU kernels lack float16 matmul), checked
against eager at several batch sizes and lengths, then cast to the requested dtype: the graph casts with
type_as and to(float32) only, so the cast trace follows its weights. Before it is declared a success the
saved file is loaded back with torch.jit.load and checked again (on CUDA too when CUDA is present).
"""

from __future__ import annotations

import argparse
import copy
import itertools
import json
import os
import sys
from typing import Dict, List, Optional, Tuple

import torchpython  # noqa: E402  (before torch: finds a Python that has it)

torchpython.ensure()

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gpt2  # noqa: E402
import hftokenizer  # noqa: E402
import int8  # noqa: E402

FORMAT_VERSION = 1

# Random-weight shapes for benchmarks; "tiny" exists so tests can run the same path quickly.
SHAPES = {
    "gpt2-small": dict(n_layer=12, n_head=12, n_embd=768, vocab_size=50264, n_positions=2048),
    "tiny": dict(n_layer=2, n_head=4, n_embd=32, vocab_size=16000, n_positions=64),
}

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}

# Batch sizes, new-token counts and cache lengths the trace is checked at (the trace itself is
# made at another shape, so a baked-in size shows up as a mismatch or an error).
CHECK_SHAPES = list(itertools.product((1, 3), (1, 5), (0, 7)))
TRACE_SHAPE = (2, 3, 4)

# Graph nodes that create tensors from Python values; in a trace they become constants with a
# fixed device and shape, which is exactly what breaks a CPU trace on CUDA.
_FORBIDDEN_NODES = {"aten::arange", "aten::zeros", "aten::ones", "aten::full", "aten::empty", "aten::tensor",
                    "aten::scalar_tensor", "aten::zeros_like", "aten::ones_like", "aten::new_zeros", "aten::new_ones"}


class ExportError(Exception):
    """A failed export, with a one-line message for the user."""


class Step(nn.Module):
    """GPT2.step as forward, since torch.jit.trace traces forward."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, input_ids, position_ids, attn_mask, past, last_index):
        return self.model.step(input_ids, position_ids, attn_mask, past, last_index)


def step_inputs(cfg: gpt2.GPT2Config, B: int, T: int, S: int, dtype=torch.float32, device="cpu", seed=0):
    """Random step inputs at one shape: rows right-padded to different lengths, random cache."""
    g = torch.Generator().manual_seed(seed * 1000 + B * 100 + T * 10 + S)
    lengths = [max(1, T - b) for b in range(B)]
    ids = [torch.randint(0, cfg.vocab_size, (n,), generator=g).tolist() for n in lengths]
    input_ids, pos, mask, last = gpt2.causal_step_inputs(lengths, past_len=S, ids=ids)
    past = torch.randn(cfg.n_layer, 2, B, cfg.n_head, S, cfg.head_dim, generator=g)
    return tuple(t.to(device) for t in (input_ids, pos, mask, past.to(dtype), last))


def trace_step(model: nn.Module, cfg: gpt2.GPT2Config) -> torch.jit.ScriptModule:
    """Traces the step on the CPU in the model's current (float32) weights."""
    with torch.no_grad():
        traced = torch.jit.trace(Step(model).eval(), step_inputs(cfg, *TRACE_SHAPE), check_trace=False)
    problems = graph_problems(traced)
    if problems:
        raise ExportError("trace bakes in tensors: " + ", ".join(problems))
    return traced


def graph_problems(traced: torch.jit.ScriptModule) -> List[str]:
    """Nodes of the traced graph that would freeze a device or shape into the file."""
    return sorted({n.kind() for n in traced.inlined_graph.nodes() if n.kind() in _FORBIDDEN_NODES})


def max_diff(a: Tuple[torch.Tensor, torch.Tensor], b: Tuple[torch.Tensor, torch.Tensor]) -> float:
    """Max abs difference of (logits, present) pairs; shape or dtype mismatches are errors."""
    for x, y in zip(a, b):
        if x.shape != y.shape or x.dtype != y.dtype:
            raise ExportError(f"trace output {tuple(x.shape)} {x.dtype} differs from eager {tuple(y.shape)} {y.dtype}")
    return max(float((x.float() - y.float()).abs().max()) if x.numel() else 0.0 for x, y in zip(a, b))


def check(traced, eager: nn.Module, cfg, dtype, device, tol: float, label: str, log) -> float:
    """Compares traced and eager step at CHECK_SHAPES; raises ExportError above tol."""
    worst = 0.0
    with torch.no_grad():
        for B, T, S in CHECK_SHAPES:
            args = step_inputs(cfg, B, T, S, dtype, device)
            try:
                got = traced(*args)
            except RuntimeError as e:  # a baked shape often shows up as an indexing error
                msg = str(e).strip().splitlines()[-1]
                raise ExportError(f"{label}: trace fails at B={B} T={T} S={S}: {msg}") from None
            d = max_diff(got, eager.step(*args))
            if d > tol:
                raise ExportError(f"{label}: trace differs from eager at B={B} T={T} S={S}: max abs diff {d:.3g} > {tol:g}")
            worst = max(worst, d)
    log(f"{label}: trace == eager at B{{1,3}} x T{{1,5}} x S{{0,7}}, max abs diff {worst:.3g} (tolerance {tol:g})")
    return worst


def cpu_supports(dtype: torch.dtype) -> bool:
    """Whether this torch's CPU kernels run a Linear in dtype (float16 does not in torch 1.13)."""
    try:
        nn.Linear(2, 2).to(dtype)(torch.zeros(1, 2, dtype=dtype))
        return True
    except RuntimeError:
        return False


def tolerance(dtype: torch.dtype) -> float:
    # Trace and eager run the same kernels, so in float32 they agree far below 1e-4; 16-bit
    # outputs (the cache) are rounded to ~3 significant digits, so allow one rounding step.
    return 1e-4 if dtype == torch.float32 else 5e-2


# ----------------------------------------------------------------------------- model sources


def load_source(args) -> Tuple[gpt2.GPT2, str]:
    if args.random_shape:
        cfg = gpt2.GPT2Config(**SHAPES[args.random_shape])
        return gpt2.random_gpt2(cfg, seed=0), f"random:{args.random_shape}:seed0"
    if not os.path.isfile(os.path.join(args.hf, "config.json")):
        raise ExportError(f"{args.hf}: no config.json (is it a Hugging Face model directory?)")
    return gpt2.load_hf(args.hf, dtype=torch.float32), os.path.abspath(args.hf)


def write_tokenizer(args, out: str, log) -> Dict:
    path = os.path.join(out, "tokenizer.json")
    if args.random_shape:
        src_dir = None
        tmp = path + ".tmp"
        with open(args.tokenizer, "rb") as f, open(tmp, "wb") as g:
            g.write(f.read())
        os.replace(tmp, path)
        how = "copied"
    else:
        src_dir = args.hf
        how = hftokenizer.write_tokenizer_json(src_dir, path)
    log(f"tokenizer.json: {how}")
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def prompt_format(requested: str, specials: Dict[str, int]) -> str:
    has_tags = all(t in specials for t in hftokenizer.DIALOGUE_TAGS)
    if requested == "auto":
        return "rudialogpt" if has_tags else "dialogpt"
    if requested == "rudialogpt" and not has_tags:
        raise ExportError("prompt format rudialogpt needs @@ПЕРВЫЙ@@ and @@ВТОРОЙ@@ tokens, the tokenizer lacks them")
    return requested


def metadata(cfg, args, tok: Dict, source: str, diff: float) -> Dict:
    specials = hftokenizer.token_ids(tok, (hftokenizer.EOS, *hftokenizer.DIALOGUE_TAGS))
    eos = specials.get(hftokenizer.EOS, cfg.eos_token_id)
    return {
        "format_version": FORMAT_VERSION,
        "architecture": "gpt2",
        "n_layer": cfg.n_layer,
        "n_head": cfg.n_head,
        "n_embd": cfg.n_embd,
        "head_dim": cfg.head_dim,
        "vocab_size": cfg.vocab_size,
        "n_positions": cfg.n_positions,
        "layer_norm_epsilon": cfg.layer_norm_epsilon,
        "dtype": args.dtype,
        "quantize": args.quantize or "none",
        # int8 Linear layers (dialogbot::linear_w8) have a CPU kernel only.
        "cpu_only": bool(args.quantize),
        "prompt_format": prompt_format(args.prompt_format, specials),
        "eos_token_id": eos,
        "special_tokens": specials,
        "torch_version": torch.__version__,
        "source": source,
        "trace_max_abs_diff": diff,
    }


# ----------------------------------------------------------------------------- export


def quantize_int8(model: gpt2.GPT2) -> nn.Module:
    """Weight-only int8 Linear layers (int8.py), the output layer included.

    The tied output layer is untied first so it is quantized too: kept in fp32 it is the largest read
    of a decode step (GPT-2-small: 38.6M of 124M parameters). The embedding stays float32 (a lookup
    reads one row of it).
    """
    if model.lm_head is None:
        model.lm_head = nn.Linear(model.config.n_embd, model.config.vocab_size, bias=False)
        model.lm_head.weight = model.transformer.wte.weight
    return int8.quantize(model)


def build_trace(model: gpt2.GPT2, args, log) -> Tuple[torch.jit.ScriptModule, nn.Module, float]:
    """Returns (trace in the target dtype, eager model it must match, max diff seen)."""
    cfg, dtype = model.config, DTYPES[args.dtype]
    if args.quantize:
        model = quantize_int8(model)
        log("quantized Linear layers to int8 (weights only, a scale per output row; CPU only)")
    traced = trace_step(model, cfg)
    diff = check(traced, model, cfg, torch.float32, "cpu", 1e-4, "cpu float32", log)
    if dtype == torch.float32:
        return traced, model, diff
    traced.to(dtype)  # in place: a ScriptModule's params follow, the graph casts with type_as
    model = model.to(dtype)
    if cpu_supports(dtype):
        diff = max(diff, check(traced, model, cfg, dtype, "cpu", tolerance(dtype), f"cpu {args.dtype}", log))
    else:
        log(f"cpu {args.dtype}: not run (this torch has no CPU {args.dtype} matmul); checked on CUDA when present")
    return traced, model, diff


def save_and_reload(traced, model, cfg, args, path: str, log) -> None:
    tmp = path + ".tmp"
    torch.jit.save(traced, tmp)
    os.replace(tmp, path)
    dtype = DTYPES[args.dtype]
    devices = ["cpu"] if cpu_supports(dtype) or args.quantize else []
    if torch.cuda.is_available() and not args.quantize:
        devices.append("cuda")
    for dev in devices:
        loaded = torch.jit.load(path, map_location=dev)
        check(loaded, model.to(dev), cfg, dtype, dev, tolerance(dtype), f"reloaded on {dev} {args.dtype}", log)
    if not devices:  # still prove the file loads
        torch.jit.load(path, map_location="cpu")
        log("reloaded on cpu (not run: no CPU kernels for this dtype and no CUDA)")
    model.to("cpu")


INT8_FILE = "model.int8.pt"
# Rows of random step inputs on which the int8 copy's most likely next token is compared with the
# float copy's: seeds x CHECK_SHAPES (x their batch rows).
AGREEMENT_SEEDS = range(1, 9)


def top1_agreement(int8_model: nn.Module, float_model: nn.Module, cfg) -> Tuple[float, int, float]:
    """(fraction of rows where int8's argmax equals float's, rows compared, max abs logit diff)."""
    same = rows = 0
    worst = 0.0
    with torch.no_grad():
        for seed in AGREEMENT_SEEDS:
            for B, T, S in CHECK_SHAPES:
                args = step_inputs(cfg, B, T, S, seed=seed)
                a, b = int8_model.step(*args)[0], float_model.step(*args)[0]
                same += int((a.argmax(-1) == b.argmax(-1)).sum())
                rows += B
                worst = max(worst, float((a - b).abs().max()))
    return same / rows, rows, worst


def write_int8_copy(model: gpt2.GPT2, float_model: nn.Module, args, log) -> Dict:
    """Writes OUT/model.int8.pt beside the float copy; returns dialogbot.json's "int8" entry.

    The Go side's model.dtype = "auto" loads it on a CPU when the agreement recorded here is high
    enough, so the numbers are measured on this model, not assumed.
    """
    int8_args = argparse.Namespace(**{**vars(args), "quantize": "int8"})
    traced, eager, _ = build_trace(model, int8_args, log)
    save_and_reload(traced, eager, model.config, int8_args, os.path.join(args.out, INT8_FILE), log)
    agree, rows, worst = top1_agreement(eager, float_model, model.config)
    log(f"{INT8_FILE}: int8 top-1 == float32 top-1 on {agree:.1%} of {rows} rows, max abs logit diff {worst:.3g}")
    return {"file": INT8_FILE, "top1_agreement": agree, "rows_checked": rows, "max_abs_logit_diff": worst}


def export(args, log=print) -> Dict:
    if args.quantize and args.dtype != "float32":
        raise ExportError(f"--quantize {args.quantize} needs --dtype float32")
    model, source = load_source(args)
    cfg = model.config
    os.makedirs(args.out, exist_ok=True)
    tok = write_tokenizer(args, args.out, log)
    if hftokenizer.vocab_size(tok) > cfg.vocab_size:
        raise ExportError(f"tokenizer has ids up to {hftokenizer.vocab_size(tok) - 1} but the model's vocab_size is {cfg.vocab_size}")
    log(f"model: {cfg.n_layer} layers, {cfg.n_embd} wide, {cfg.n_head} heads, vocab {cfg.vocab_size}, "
        f"{model.num_parameters() / 1e6:.1f}M parameters, from {source}")
    both = args.quantize == "both"
    original = copy.deepcopy(model) if both else None
    if both:  # model.pt: the float copy
        args = argparse.Namespace(**{**vars(args), "quantize": None})
    traced, eager, diff = build_trace(model, args, log)
    save_and_reload(traced, eager, cfg, args, os.path.join(args.out, "model.pt"), log)
    meta = metadata(cfg, args, tok, source, diff)
    if both:
        meta["int8"] = write_int8_copy(original, eager, args, log)
    tmp = os.path.join(args.out, "dialogbot.json.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(meta, f, indent=2, ensure_ascii=False)
        f.write("\n")
    os.replace(tmp, os.path.join(args.out, "dialogbot.json"))
    log(f"wrote {args.out}/model.pt, tokenizer.json, dialogbot.json (prompt format {meta['prompt_format']})")
    return meta


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Export a Hugging Face GPT-2 to TorchScript for dialogbot.")
    p.add_argument("--hf", help="Hugging Face model directory (config.json + weights + tokenizer files)")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--dtype", choices=sorted(DTYPES), default="float32")
    p.add_argument("--quantize", choices=["int8", "both"], default=None,
                   help="int8: model.pt has int8 Linear layers (CPU only); both: model.pt stays float32 and "
                        "model.int8.pt is the int8 copy, which model.dtype = \"auto\" picks on a CPU")
    p.add_argument("--prompt-format", choices=["auto", "rudialogpt", "dialogpt"], default="auto")
    p.add_argument("--random-shape", choices=sorted(SHAPES), help="random weights of this shape (benchmarks)")
    p.add_argument("--tokenizer", help="tokenizer.json to ship with --random-shape")
    args = p.parse_args(argv)
    if bool(args.hf) == bool(args.random_shape):
        p.error("give exactly one of --hf DIR or --random-shape NAME")
    if args.random_shape and not args.tokenizer:
        p.error("--random-shape needs --tokenizer FILE")
    return args


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    try:
        export(args)
    except (ExportError, OSError, ValueError, RuntimeError) as e:
        print(f"export: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
