#!/usr/bin/env python3
"""Fine-tunes a GPT-2 dialogue model on a `dialogbot dataset` directory.

    finetune.py --model HFDIR --data DATADIR --out OUTDIR [--steps N | --epochs E] [--progress-json] ...
    torchrun --nproc_per_node K finetune.py ...      (data-parallel over K processes)

The loss is cross-entropy on the target replies only (token j predicted from
tokens < j where mask[j] == 1), so the model learns to answer and to stop
(the stop tag is inside the target) but not to imitate the prompts. Only the
hidden states that predict a target go through the output layer. Examples
are packed into rows without attention across examples (--layout pack) or
length-bucketed and right-padded (--layout bucket); see batches.py.

Writes into OUTDIR: best/ (Hugging Face layout, the lowest validation loss
seen; export.py's input), checkpoint.pt (resumed from when present),
summary.json, and the report (report.json, loss.svg, report.md; report.py).
Human progress goes to stderr. stdout carries, with --progress-json, one
JSON event per line and nothing else (the contract in docs/training.md);
without it, one line: the JSON summary. SIGINT/SIGTERM stop after the
current step with a checkpoint (exit 130); a rerun with the same --out
resumes. Works with Debian's torch 1.13 on the CPU and torch 2.x on CUDA.
"""

import argparse
import contextlib
import hashlib
import inspect
import json
import math
import os
import shutil
import signal
import sys
import time
from typing import Callable, Dict, List, NamedTuple, Optional, Tuple

import torchpython  # noqa: E402  (before torch: finds a Python that has it)

torchpython.ensure()

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import batches as bt  # noqa: E402
import ddp  # noqa: E402
import gpt2  # noqa: E402
import report  # noqa: E402
from dataset_io import Dataset, DatasetError, Split, load_dataset  # noqa: E402
from prompt_format import FORMATS  # noqa: E402

CHECKPOINT = "checkpoint.pt"
BEST = "best"
EXIT_INTERRUPTED = 130


class FinetuneError(Exception):
    """A user-facing failure; str() is a one-line message."""


class Interrupted(Exception):
    """SIGINT/SIGTERM: the run stopped after a step and saved a checkpoint."""


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Fine-tune a GPT-2 dialogue model on a `dialogbot dataset` directory.",
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--model", required=True, help="Hugging Face GPT-2 directory (config.json, model.safetensors, tokenizer.json)")
    p.add_argument("--data", required=True, help="dataset directory written by `dialogbot dataset`")
    p.add_argument("--out", required=True, help="output directory (best/, checkpoint.pt, report.json, ...)")
    p.add_argument("--epochs", type=float, default=1.0, help="passes over the training split (ignored with --steps)")
    p.add_argument("--steps", type=int, default=0, help="optimizer steps (0: from --epochs)")
    p.add_argument("--lr", type=float, default=1e-4, help="peak learning rate")
    p.add_argument("--min-lr-ratio", type=float, default=0.1, help="cosine decays to lr * this")
    p.add_argument("--batch-tokens", type=int, default=4096,
                   help="tokens per micro-batch and process (pack: real tokens; bucket: padded tokens)")
    p.add_argument("--batch", type=int, default=0, help="examples per micro-batch (0: as many as --batch-tokens allows)")
    p.add_argument("--grad-accum", type=int, default=1, help="micro-batches per optimizer step and process")
    p.add_argument("--layout", default="pack", choices=bt.LAYOUTS,
                   help="pack: examples packed into rows, no padding; bucket: similar lengths, right-padded")
    p.add_argument("--warmup", type=int, default=-1, help="linear warmup steps (-1: 5%% of the steps)")
    p.add_argument("--weight-decay", type=float, default=0.01, help="AdamW decay of weight matrices (not biases/LayerNorm)")
    p.add_argument("--clip", type=float, default=1.0, help="gradient norm clip (0: off)")
    p.add_argument("--dropout", type=float, default=-1, help="dropout while training (-1: the model config's)")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    p.add_argument("--dtype", default="auto", choices=("auto", "fp32", "bf16"),
                   help="matmul precision (weights stay fp32); auto: bf16 autocast on CUDA with bf16 and on "
                        "CPUs with avx512_bf16/AMX, else fp32")
    p.add_argument("--compile", action="store_true", help="torch.compile the model (torch >= 2)")
    p.add_argument("--eval-every", type=int, default=0, help="validate every N steps (0: ten times per run)")
    p.add_argument("--log-every", type=int, default=10, help="stderr progress line every N steps (and after step 1)")
    p.add_argument("--progress-json", action="store_true",
                   help="JSON events on stdout, one per line (start, step at least once a second, eval, done)")
    p.add_argument("--resume", action="store_true",
                   help="require a checkpoint in --out to continue from (a present one is always resumed)")
    p.add_argument("--samples", type=int, default=5, help="held-out replies in the report (0: none)")
    p.add_argument("--sample-tokens", type=int, default=40, help="longest generated reply in the report")
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument("--threads", type=int, default=0, help="CPU threads for torch (0: torch's default)")
    p.add_argument("--max-minutes", type=float, default=0, help="stop (with a checkpoint) after this long (0: no limit)")
    # Verification only: the pre-issue-13 loss (logits at every position, then the targets picked).
    p.add_argument("--full-logits", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    for name in ("batch_tokens", "grad_accum"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.steps < 0 or args.epochs <= 0 or args.lr <= 0:
        p.error("--steps must be >= 0, --epochs and --lr > 0")
    if args.dropout > 1 or args.samples < 0 or args.sample_tokens < 1:
        p.error("--dropout must be at most 1, --samples >= 0, --sample-tokens >= 1")
    return args


# ----------------------------------------------------------------------------- loss


def masked_loss_sum(logits: torch.Tensor, ids: torch.Tensor, mask: torch.Tensor) -> Tuple[torch.Tensor, int]:
    """Summed cross-entropy of predicting ids[:, j] from logits[:, j-1] where mask[:, j];
    the number of such targets. The reference definition the training loss must equal."""
    tgt = mask[:, 1:]
    sel = logits[:, :-1][tgt].float()
    labels = ids[:, 1:][tgt]
    return F.cross_entropy(sel, labels, reduction="sum"), int(tgt.sum())


class TargetLoss(torch.nn.Module):
    """The model and its loss in one forward, so DDP (which hooks forward) and
    torch.compile see the whole step. Returns the summed cross-entropy of the
    batch's targets; only their hidden states reach the output layer."""

    def __init__(self, model: gpt2.GPT2, full_logits: bool = False):
        super().__init__()
        self.model, self.full_logits = model, full_logits

    def forward(self, ids, positions, segments, src, labels):
        if self.full_logits:  # the old path: [B,T,V] logits, then the targets
            if positions is not None:
                raise ValueError("--full-logits needs --layout bucket")
            sel = self.model(ids).flatten(0, 1).index_select(0, src)
        else:
            h = self.model.hidden(ids, positions, segments)
            sel = self.model.head(h.flatten(0, 1).index_select(0, src))
        return F.cross_entropy(sel.float(), labels, reduction="sum")


# ----------------------------------------------------------------------------- setup


class Setup(NamedTuple):
    model: gpt2.GPT2
    data: Dataset
    device: torch.device
    pad_id: int
    context: int
    train_idx: np.ndarray
    valid_idx: np.ndarray
    bf16: bool
    world: ddp.World


def pick_device(name: str, world: ddp.World = ddp.SINGLE) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise FinetuneError("--device cuda: no CUDA device is available to torch")
    if name == "cuda":
        if world.local_rank >= torch.cuda.device_count():
            raise FinetuneError(f"LOCAL_RANK {world.local_rank}: only {torch.cuda.device_count()} CUDA devices")
        torch.cuda.set_device(world.local_rank)
        return torch.device("cuda", world.local_rank)
    return torch.device(name)


def cpu_has_bf16() -> bool:
    """A CPU whose vector units multiply bf16 natively (oneDNN then runs bf16 GEMMs
    several times faster than fp32; elsewhere bf16 is emulated and slower)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("flags"):
                    flags = line.split()
                    return "avx512_bf16" in flags or "amx_bf16" in flags
    except OSError:
        pass
    return False


def use_bf16(choice: str, device: torch.device) -> bool:
    if choice == "fp32":
        return False
    if device.type == "cuda":
        ok = torch.cuda.is_bf16_supported()
    else:
        ok = cpu_has_bf16() and torch.backends.mkldnn.is_available()
    if choice == "bf16" and not ok:
        raise FinetuneError(f"--dtype bf16: {device.type} here has no native bf16 (use --dtype fp32)")
    return ok


def autocast(device: torch.device, bf16: bool):
    """bf16 autocast (fp32 master weights, fp32 softmax and loss) or plain fp32."""
    if not bf16:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)


def sha256_file(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def check_model_dir(path: str) -> None:
    if not os.path.isdir(path):
        raise FinetuneError(f"model directory {path!r} does not exist")
    for name in ("config.json", "tokenizer.json"):
        if not os.path.isfile(os.path.join(path, name)):
            raise FinetuneError(f"model directory {path!r} has no {name}")


def load_model(path: str, device: torch.device) -> gpt2.GPT2:
    check_model_dir(path)
    try:
        return gpt2.load_hf(path, device=device, dtype=torch.float32)
    except (OSError, ValueError, KeyError) as e:
        raise FinetuneError(f"cannot load model from {path!r}: {e}") from None


def check_compatible(model: gpt2.GPT2, data: Dataset, model_dir: str) -> None:
    """Refuses a dataset made for another tokenizer or vocabulary: training on
    it would run without error and produce nonsense."""
    meta = data.meta
    if meta.get("prompt_format", "rudialogpt") not in FORMATS:
        raise FinetuneError(f"dataset prompt_format {meta.get('prompt_format')!r} is unknown (want one of {FORMATS})")
    if meta["vocab_size"] > model.config.vocab_size:
        raise FinetuneError(f"dataset vocab_size {meta['vocab_size']} > model vocab_size {model.config.vocab_size}: "
                            "the dataset was made with another tokenizer")
    want = meta.get("tokenizer_sha256")
    have = sha256_file(os.path.join(model_dir, "tokenizer.json"))
    if want and want != have:
        raise FinetuneError(f"dataset was tokenized with {meta.get('tokenizer')!r} (sha256 {want[:12]}), "
                            f"not with {model_dir}/tokenizer.json (sha256 {have[:12]}): rebuild it with that tokenizer")


def pad_id_of(model: gpt2.GPT2, meta: dict) -> int:
    """Padding id: the value does not matter for the loss (padding is masked
    and after every real token), but a real id keeps embeddings in range."""
    for v in (meta.get("pad_id"), meta.get("eos_id"), model.config.eos_token_id):
        if isinstance(v, int) and 0 <= v < model.config.vocab_size:
            return v
    return 0


def trainable(split: Split, context: int) -> np.ndarray:
    """Indices of examples that have at least one loss target after position 0
    once cut to the context; the others would only add padding."""
    keep = []
    for i in range(len(split)):
        _, mask = split.example(i)
        if mask[-context:][1:].any():
            keep.append(i)
    return np.array(keep, dtype=np.int64)


def set_dropout(model: torch.nn.Module, p: float) -> None:
    for m in model.modules():
        if isinstance(m, torch.nn.Dropout):
            m.p = p


def setup(args: argparse.Namespace, log: Callable[[str], None], world: ddp.World = ddp.SINGLE) -> Setup:
    device = pick_device(args.device, world)
    bf16 = use_bf16(getattr(args, "dtype", "fp32"), device)
    data = load_dataset(args.data)
    model = load_model(args.model, device)
    check_compatible(model, data, args.model)
    if getattr(args, "dropout", -1) >= 0:
        set_dropout(model, args.dropout)
    context = model.config.n_positions
    if data.meta.get("context_length", 0) > context:
        log(f"warning: dataset context_length {data.meta['context_length']} > model n_positions {context}; "
            "longer examples lose their oldest tokens")
    train_idx = trainable(data.train, context)
    if len(train_idx) == 0:
        raise FinetuneError(f"dataset {args.data!r} has no training examples with target tokens")
    valid_idx = trainable(data.valid, context)
    if len(valid_idx) == 0:
        log("warning: the validation split is empty: no validation loss, the last weights are kept as best")
    return Setup(model, data, device, pad_id_of(model, data.meta), context, train_idx, valid_idx, bf16, world)


def param_groups(model: torch.nn.Module, weight_decay: float) -> List[Dict]:
    """Decay weight matrices and embeddings only; biases and LayerNorm gains
    (1-D) are not scales the model should shrink towards zero."""
    decay = [p for p in model.parameters() if p.requires_grad and p.dim() >= 2]
    other = [p for p in model.parameters() if p.requires_grad and p.dim() < 2]
    return [{"params": decay, "weight_decay": weight_decay}, {"params": other, "weight_decay": 0.0}]


def make_optimizer(model: torch.nn.Module, args: argparse.Namespace, device: torch.device) -> torch.optim.AdamW:
    """AdamW; on CUDA the fused kernel where this torch has it (one launch for all parameters)."""
    kw = {}
    if device.type == "cuda" and "fused" in inspect.signature(torch.optim.AdamW).parameters:
        kw["fused"] = True
    return torch.optim.AdamW(param_groups(model, args.weight_decay), lr=args.lr, betas=(0.9, 0.95), **kw)


def lr_lambda(warmup: int, total: int, min_ratio: float) -> Callable[[int], float]:
    """Linear warmup to the peak, then cosine down to min_ratio of it at `total`."""
    def f(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = min(1.0, (step - warmup) / max(1, total - warmup))
        return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))
    return f


# ----------------------------------------------------------------------------- evaluation


@torch.no_grad()
def evaluate(s: Setup, batch_tokens: int, batch_size: int, layout: str = "bucket") -> Optional[float]:
    """Mean cross-entropy per target token of the validation split (None when
    empty). Under DDP each process takes every world-th batch and the sums meet."""
    if len(s.valid_idx) == 0:
        return None
    s.model.eval()
    make, collate = bt.batcher(layout)
    loss_fn = TargetLoss(s.model)
    lengths = np.minimum(s.data.valid.lengths()[s.valid_idx], s.context)
    sums = torch.zeros(2, dtype=torch.float64, device=s.device)
    for b in make(lengths, batch_tokens, batch_size, None)[s.world.rank::s.world.size]:
        batch = collate(s.data.valid, s.valid_idx[b], s.pad_id, s.context).to(s.device)
        with autocast(s.device, s.bf16):
            loss = loss_fn(batch.ids, batch.positions, batch.segments, batch.src, batch.labels)
        sums[0] += loss.double()
        sums[1] += batch.targets
    ddp.sum_(sums, s.world)
    total, count = sums.tolist()
    return total / count


def ppl(loss: Optional[float]) -> Optional[float]:
    return None if loss is None else math.exp(min(loss, 50.0))


# ----------------------------------------------------------------------------- state


class Progress:
    """What a checkpoint carries besides the weights and optimizer."""

    def __init__(self):
        self.step = 0
        self.loss_before: Optional[float] = None
        self.best_loss: Optional[float] = None
        self.best_step = 0
        self.tokens = 0  # real (non-pad) training tokens seen, all sessions and processes
        self.time_s = 0.0  # training time (steps only), all sessions
        self.train_history: List[List[float]] = []  # [step, mean train loss of that step]
        self.valid_history: List[List[float]] = []  # [step, validation loss]

    def to_dict(self) -> Dict:
        return dict(vars(self))

    def load(self, d: Dict) -> None:
        for k in vars(self):
            setattr(self, k, d[k])


def fingerprint(s: Setup) -> Dict:
    """Identifies the dataset a checkpoint was trained on, so a resume on other data fails."""
    d = s.data
    return {"train_examples": len(d.train), "valid_examples": len(d.valid),
            "train_tokens": int(len(d.train.tokens)), "valid_tokens": int(len(d.valid.tokens))}


def batch_plan(args: argparse.Namespace, world: ddp.World) -> Dict:
    """What fixes the sequence of micro-batches; a resume must keep it. The
    process count may change as long as the global batch stays the same."""
    return {"seed": args.seed, "micro_batches_per_step": args.grad_accum * world.size,
            "batch_tokens": args.batch_tokens, "batch": args.batch, "layout": args.layout}


def save_checkpoint(path: str, s: Setup, opt, sched, prog: Progress, args: argparse.Namespace) -> None:
    state = {"model": s.model.state_dict(), "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
             "progress": prog.to_dict(), "data": fingerprint(s), "plan": batch_plan(args, s.world)}
    tmp = path + ".tmp"
    torch.save(state, tmp)
    os.replace(tmp, path)  # a crash mid-save leaves the previous checkpoint intact


def load_checkpoint(path: str, s: Setup, opt, sched, prog: Progress, args: argparse.Namespace) -> None:
    try:
        # Our own file in --out; torch 1.13's weights_only unpickler cannot even read floats.
        state = torch.load(path, map_location=s.device, weights_only=False)
    except Exception as e:  # torch raises many kinds for a damaged file
        raise FinetuneError(f"cannot read {path}: {e} (delete it to start over)") from None
    if "plan" not in state:
        raise FinetuneError(f"{path} was written by an older finetune.py; use a new --out")
    if state["data"] != fingerprint(s):
        raise FinetuneError(f"{path} was made on another dataset ({state['data']}); use a new --out")
    plan = batch_plan(args, s.world)
    for k, v in state["plan"].items():
        if plan.get(k) != v:
            raise FinetuneError(f"{path} was made with {k} {v}, now {plan.get(k)}: "
                                "resume with the same settings or use a new --out")
    s.model.load_state_dict(state["model"])
    opt.load_state_dict(state["optimizer"])
    sched.load_state_dict(state["scheduler"])
    prog.load(state["progress"])


def save_best(s: Setup, args: argparse.Namespace) -> None:
    """Writes OUTDIR/best through a temporary directory, so `best` is always complete."""
    final = os.path.join(args.out, BEST)
    tmp = final + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    gpt2.save_hf(s.model, tmp)
    for name in ("tokenizer.json", "generation_config.json"):
        src = os.path.join(args.model, name)
        if os.path.isfile(src):
            shutil.copyfile(src, os.path.join(tmp, name))
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)


def step_seed(seed: int, rank: int, step: int) -> int:
    """The dropout seed of one step in one process: resuming at a step needs no saved RNG state."""
    return int(np.random.SeedSequence([seed, rank, step]).generate_state(1)[0])


# ----------------------------------------------------------------------------- training


class Events:
    """--progress-json: one JSON object per line on stdout, flushed at once."""

    def __init__(self, enabled: bool, stream=None):
        self.enabled, self.stream = enabled, stream or sys.stdout

    def emit(self, event: str, **fields) -> None:
        if self.enabled:  # NaN/Infinity are not JSON: a diverged loss is sent as null
            self.stream.write(json.dumps(report.finite({"event": event, **fields}), allow_nan=False) + "\n")
            self.stream.flush()


class Trainer:
    def __init__(self, s: Setup, args: argparse.Namespace, log: Callable[[str], None], events: Events):
        self.s, self.args, self.log, self.events = s, args, log, events
        self.make_batches, self.collate = bt.batcher(args.layout)
        self.lengths = np.minimum(s.data.train.lengths()[s.train_idx], s.context)
        self.targets = np.array([int(s.data.train.example(int(i))[1][-s.context:][1:].sum()) for i in s.train_idx])
        self.per_step = args.grad_accum * s.world.size  # micro-batches per optimizer step, all processes
        self.n_batches = len(self.make_batches(self.lengths, args.batch_tokens, args.batch, None))
        self.total = args.steps or max(1, math.ceil(args.epochs * self.n_batches / self.per_step))
        warmup = args.warmup if args.warmup >= 0 else max(1, self.total // 20)
        self.opt = make_optimizer(s.model, args, s.device)
        self.sched = torch.optim.lr_scheduler.LambdaLR(self.opt, lr_lambda(warmup, self.total, args.min_lr_ratio))
        self.eval_every = args.eval_every or max(1, self.total // 10)
        self.prog = Progress()
        self.loss_fn = self._loss_module()
        self.tokens_per_s = 0.0  # this session's training speed
        self._epoch, self._start, self._batches = -1, 0, []
        self._last_eval: Tuple[int, Optional[float]] = (-1, None)
        self._pending: List[Tuple[int, torch.Tensor, int, object]] = []  # losses not yet read from the device

    def _loss_module(self) -> torch.nn.Module:
        s, a = self.s, self.args
        m: torch.nn.Module = TargetLoss(s.model, a.full_logits)
        if a.compile:
            if not hasattr(torch, "compile"):
                raise FinetuneError(f"--compile needs torch >= 2 (this is {torch.__version__})")
            m = torch.compile(m, dynamic=True)
        if s.world.enabled:
            ids = [s.device.index] if s.device.type == "cuda" else None
            m = torch.nn.parallel.DistributedDataParallel(m, device_ids=ids, gradient_as_bucket_view=True)
        return m

    def micro_batch(self, m: int) -> np.ndarray:
        """The m-th micro-batch of the whole run (positions into train_idx), a pure
        function of (seed, m). Epochs may differ in batch count (shuffling packs
        differently), so they are walked from the start; m never goes back."""
        while m >= self._start + len(self._batches):
            self._start += len(self._batches)
            self._epoch += 1
            rng = np.random.default_rng([self.args.seed, self._epoch])
            self._batches = self.make_batches(self.lengths, self.args.batch_tokens, self.args.batch, rng)
        return self._batches[m - self._start]

    def train_step(self) -> None:
        """One optimizer step over the step's micro-batches (this process takes
        every world-th). The loss is the mean over all their target tokens, not a
        mean of per-batch means; the target count comes from the host-side data,
        so nothing here waits for the device."""
        s, a, w = self.s, self.args, self.s.world
        first = self.prog.step * self.per_step
        groups = [self.micro_batch(first + k) for k in range(self.per_step)]
        n_targets = int(sum(self.targets[g].sum() for g in groups))
        mine = groups[w.rank::w.size]
        torch.manual_seed(step_seed(a.seed, w.rank, self.prog.step))
        s.model.train()
        self.opt.zero_grad(set_to_none=True)
        acc = torch.zeros((), device=s.device)
        scale = w.size / n_targets  # DDP averages gradients over processes; undo that
        for k, g in enumerate(mine):
            b = self.collate(s.data.train, s.train_idx[g], s.pad_id, s.context).to(s.device)
            sync = k == len(mine) - 1 or not w.enabled
            with contextlib.nullcontext() if sync else self.loss_fn.no_sync():
                with autocast(s.device, s.bf16):
                    loss = self.loss_fn(b.ids, b.positions, b.segments, b.src, b.labels)
                (loss * scale).backward()
            acc += loss.detach()
        if a.clip > 0:
            torch.nn.utils.clip_grad_norm_(s.model.parameters(), a.clip)
        self.opt.step()
        self.sched.step()
        self.prog.step += 1
        self.prog.tokens += int(sum(self.lengths[g].sum() for g in groups))
        self._pending.append((self.prog.step, acc, n_targets, ddp.sum_(acc, w, async_op=True)))

    def read_losses(self) -> List[Tuple[int, float]]:
        """(step, train loss) of the steps since the last call: the one point where
        the host waits for the device's losses, once per progress line."""
        if not self._pending:
            return []
        for _, _, _, work in self._pending:
            if work is not None:
                work.wait()
        values = torch.stack([acc for _, acc, _, _ in self._pending]).tolist()
        out = [(step, v / n) for (step, _, n, _), v in zip(self._pending, values)]
        self._pending = []
        self.prog.train_history.extend([step, loss] for step, loss in out)
        return out

    def validate(self, tag: str) -> Optional[float]:
        """Validation loss at the current step, saving the best weights; a step
        already evaluated (a stop right after an eval) is not evaluated again."""
        a, s = self.args, self.s
        if self._last_eval[0] == self.prog.step:
            return self._last_eval[1]
        loss = evaluate(s, a.batch_tokens, a.batch, a.layout)
        self._last_eval = (self.prog.step, loss)
        if loss is None:
            return None
        hist = self.prog.valid_history
        if hist and hist[-1][0] == self.prog.step:  # a rerun of a finished run evaluates its last step again
            hist.pop()
        hist.append([self.prog.step, loss])
        self.log(f"valid {tag} step {self.prog.step}: loss {loss:.4f} ppl {ppl(loss):.3f}")
        self.events.emit("eval", step=self.prog.step, valid_loss=loss, valid_ppl=ppl(loss))
        if self.prog.best_loss is None or loss < self.prog.best_loss:
            self.prog.best_loss, self.prog.best_step = loss, self.prog.step
            if s.world.main:
                save_best(s, a)
                self.log(f"saved best (step {self.prog.step}) to {os.path.join(a.out, BEST)}")
        return loss

    def checkpoint(self, path: str) -> None:
        self.read_losses()
        if self.s.world.main:
            save_checkpoint(path, self.s, self.opt, self.sched, self.prog, self.args)
        ddp.barrier(self.s.world)


def fmt_secs(t: float) -> str:
    t = int(t)
    return f"{t // 3600}:{t // 60 % 60:02d}:{t % 60:02d}"


def default_log(msg: str) -> None:
    print(f"finetune: {msg}", file=sys.stderr, flush=True)


class StopSignal:
    """SIGINT/SIGTERM ask the run to stop after the current step (with a checkpoint);
    a second signal interrupts at once."""

    def __init__(self):
        self.requested = False
        self._old = {}

    def install(self) -> None:
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._old[sig] = signal.signal(sig, self._handle)

    def uninstall(self) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)
        self._old = {}

    def __call__(self, step: int) -> bool:
        return False  # a signal raises Interrupted instead: that run ends with exit 130, not 0

    def _handle(self, signum, frame) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        default_log("stopping after this step (signal again to abort without a checkpoint)")


def run(args: argparse.Namespace, log: Callable[[str], None] = default_log,
        should_stop: Optional[Callable[[int], bool]] = None, events: Optional[Events] = None,
        world: Optional[ddp.World] = None) -> Dict:
    """Trains and returns the summary (also written, with the report, into
    --out). should_stop(step) ends the run early (as --max-minutes does),
    leaving a checkpoint to resume from; it raises Interrupted (after saving
    a checkpoint) when should_stop.requested is set, as StopSignal sets it."""
    world = world or ddp.from_env()
    events = events or Events(False)
    if not world.main:
        log, events = (lambda _: None), Events(False)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    s = setup(args, log, world)
    ddp.init(world, s.device)
    if s.device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
    os.makedirs(args.out, exist_ok=True)
    tr = Trainer(s, args, log, events)
    ckpt = os.path.join(args.out, CHECKPOINT)
    log(f"model {args.model}: {s.model.num_parameters():,} parameters on {s.device} "
        f"({'bf16 autocast' if s.bf16 else 'fp32'}, {world.size} process(es)); {len(s.train_idx)} train / "
        f"{len(s.valid_idx)} valid examples, {tr.n_batches} micro-batches per epoch, {tr.total} steps")
    if os.path.exists(ckpt):
        load_checkpoint(ckpt, s, tr.opt, tr.sched, tr.prog, args)
        log(f"resumed from {ckpt} at step {tr.prog.step}")
    elif args.resume:
        raise FinetuneError(f"--resume: no {CHECKPOINT} in {args.out}")
    tokens_per_step = int(tr.lengths.sum() / tr.n_batches * tr.per_step)  # the mean over an epoch
    events.emit("start", total_steps=tr.total, tokens_per_step=tokens_per_step, step=tr.prog.step)
    if tr.prog.step == 0 and tr.prog.loss_before is None:
        tr.prog.loss_before = tr.validate("before")
        if tr.prog.loss_before is None and world.main:
            save_best(s, args)
    stopped = train_loop(tr, ckpt, should_stop)
    after = tr.validate("after")
    if after is None and world.main:
        save_best(s, args)  # no validation: the last weights are the result
    tr.checkpoint(ckpt)
    summary = {"steps": tr.prog.step, "total_steps": tr.total, "stopped_early": stopped,
               "valid_loss_before": tr.prog.loss_before, "valid_ppl_before": ppl(tr.prog.loss_before),
               "valid_loss_after": after, "valid_ppl_after": ppl(after),
               "valid_loss_best": tr.prog.best_loss, "valid_ppl_best": ppl(tr.prog.best_loss),
               "best_step": tr.prog.best_step, "tokens_per_s": tr.tokens_per_s,
               "train_tokens": tr.prog.tokens, "device": str(s.device), "best_dir": os.path.join(args.out, BEST)}
    if world.main:
        summary["report"] = write_report(tr, summary, log)
        with open(os.path.join(args.out, "summary.json"), "w", encoding="utf-8") as f:
            json.dump(summary, f, indent=1)
    ddp.barrier(world)
    return summary


def write_report(tr: Trainer, summary: Dict, log: Callable[[str], None]) -> str:
    """report.json, loss.svg and report.md in --out (report.py); returns report.json's path."""
    s, a = tr.s, tr.args
    samples = []
    if a.samples > 0 and len(s.valid_idx) > 0:
        log(f"writing the report: {a.samples} held-out replies from the base and the fine-tuned model")
        tuned = gpt2.load_hf(os.path.join(a.out, BEST), device=s.device)
        base = load_model(a.model, s.device)
        samples = report.sample_replies(base, tuned, s.data.valid, s.valid_idx[: a.samples],
                                        os.path.join(a.model, "tokenizer.json"),
                                        s.data.meta.get("prompt_format", "rudialogpt"), a.sample_tokens)
    p = tr.prog
    doc = dict(summary, train_tokens_per_s=summary["tokens_per_s"], time_s=p.time_s,
               model=a.model, data=a.data, dtype="bf16" if s.bf16 else "fp32", processes=s.world.size,
               layout=a.layout, lr=a.lr, batch_tokens=a.batch_tokens, grad_accum=a.grad_accum,
               history={"train": p.train_history, "valid": p.valid_history},
               samples=[x._asdict() for x in samples])
    return report.write(a.out, doc)


def train_loop(tr: Trainer, ckpt: str, should_stop) -> bool:
    """Runs steps until the total; returns True when stopped early (time limit
    or should_stop); raises Interrupted, after a checkpoint, on a stop signal."""
    a, w, start = tr.args, tr.s.world, time.monotonic()
    session_steps, session_time, session_tokens = 0, 0.0, 0
    last_event, window = -1e9, []
    while tr.prog.step < tr.total:
        signalled = bool(getattr(should_stop, "requested", False))
        if ddp.any_(signalled, w, tr.s.device) if w.enabled else signalled:
            tr.checkpoint(ckpt)
            tr.log(f"stopped at step {tr.prog.step}/{tr.total} with a checkpoint; run again with the same --out to resume")
            tr.events.emit("stopped", step=tr.prog.step, total_steps=tr.total, checkpoint=ckpt)
            raise Interrupted()
        t0, tokens0, first = time.monotonic(), tr.prog.tokens, session_steps == 0
        tr.train_step()
        step = tr.prog.step
        # The first step of a session is always reported: the caller's ETA needs it.
        human = first or step % a.log_every == 0 or step == tr.total
        event = tr.events.enabled and (first or step == tr.total or time.monotonic() - last_event >= 1.0)
        if human or event or step % tr.eval_every == 0:
            window += tr.read_losses()  # waits for the device: the step times below are then true
        dt = time.monotonic() - t0
        session_steps, session_time = session_steps + 1, session_time + dt
        session_tokens += tr.prog.tokens - tokens0
        tr.prog.time_s += dt
        tr.tokens_per_s = session_tokens / max(session_time, 1e-9)
        if human or event:
            loss = float(np.mean([x for _, x in window])) if window else float("nan")
            window = []
            eta = (tr.total - step) * session_time / session_steps
            lr = tr.sched.get_last_lr()[0]
            if human:
                tr.log(f"step {step}/{tr.total} loss {loss:.4f} lr {lr:.2e} tok/s {tr.tokens_per_s:.0f} "
                       f"elapsed {fmt_secs(time.monotonic() - start)} eta {fmt_secs(eta)}")
            if event:
                last_event = time.monotonic()
                tr.events.emit("step", step=step, total_steps=tr.total, loss=loss, lr=lr,
                               tokens_per_s=tr.tokens_per_s, elapsed_s=round(time.monotonic() - start, 3),
                               eta_s=round(eta, 3))
        if step % tr.eval_every == 0 and step < tr.total:
            tr.validate("during")
            tr.checkpoint(ckpt)
        out_of_time = a.max_minutes > 0 and time.monotonic() - start > a.max_minutes * 60
        stop = step < tr.total and (out_of_time or bool(should_stop and should_stop(step)))
        if ddp.any_(stop, w, tr.s.device) if w.enabled else stop:
            tr.log(f"stopping at step {step}/{tr.total}; run again with the same --out to resume")
            return True
    return False


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    events = Events(args.progress_json)
    stop = StopSignal()
    stop.install()
    world = ddp.SINGLE
    try:
        world = ddp.from_env()
        summary = run(args, should_stop=stop, events=events if world.main else Events(False), world=world)
    except (FinetuneError, DatasetError, ValueError) as e:
        print(f"finetune: error: {e}", file=sys.stderr)
        return 1
    except Interrupted:
        return EXIT_INTERRUPTED
    except KeyboardInterrupt:
        print("finetune: interrupted (resume from the last checkpoint with the same --out)", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        stop.uninstall()
        ddp.shutdown(world)
    if args.progress_json:
        events.emit("done", report=summary.get("report"), best=summary["best_dir"])
    elif world.main:
        print(json.dumps(summary), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
