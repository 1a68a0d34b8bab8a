#!/usr/bin/env python3
"""Fine-tunes a GPT-2 dialogue model on a `dialogbot dataset` directory.

    finetune.py --model HFDIR --data DATADIR --out OUTDIR [--steps N | --epochs E] ...

The loss is cross-entropy on the target replies only (token j predicted from
tokens < j where mask[j] == 1), so the model learns to answer and to stop
(the stop tag is inside the target) but not to imitate the prompts. Batches
are right-padded; with causal attention a real token never sees the padding
after it, and padded positions carry mask 0, so padding never counts.

Writes OUTDIR/best (Hugging Face layout: config.json, model.safetensors,
tokenizer.json; the lowest validation loss seen, export.py's input),
OUTDIR/checkpoint.pt (resumed from when present) and OUTDIR/summary.json.
Progress goes to stderr; the last stdout line is the JSON summary.
Works with Debian's torch 1.13 on the CPU and torch 2.x on CUDA (bf16 autocast).
"""

import argparse
import contextlib
import hashlib
import json
import math
import os
import shutil
import sys
import time
from typing import Callable, Dict, List, NamedTuple, Optional, Tuple

import numpy as np
import torch
import torch.nn.functional as F

import gpt2
from dataset_io import Dataset, DatasetError, Split, load_dataset
from prompt_format import FORMATS

CHECKPOINT = "checkpoint.pt"
BEST = "best"
BUCKET = 16  # examples whose lengths differ by less than this may share a batch in any order


class FinetuneError(Exception):
    """A user-facing failure; str() is a one-line message."""


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Fine-tune a GPT-2 dialogue model on a `dialogbot dataset` directory.")
    p.add_argument("--model", required=True, help="Hugging Face GPT-2 directory (config.json, model.safetensors, tokenizer.json)")
    p.add_argument("--data", required=True, help="dataset directory written by `dialogbot dataset`")
    p.add_argument("--out", required=True, help="output directory (best/, checkpoint.pt, summary.json)")
    p.add_argument("--epochs", type=float, default=1.0, help="passes over the training split (ignored with --steps)")
    p.add_argument("--steps", type=int, default=0, help="optimizer steps (overrides --epochs)")
    p.add_argument("--lr", type=float, default=1e-4, help="peak learning rate")
    p.add_argument("--min-lr-ratio", type=float, default=0.1, help="cosine decays to lr * this")
    p.add_argument("--batch-tokens", type=int, default=4096, help="padded tokens per micro-batch")
    p.add_argument("--batch", type=int, default=0, help="examples per micro-batch (0: as many as --batch-tokens allows)")
    p.add_argument("--grad-accum", type=int, default=1, help="micro-batches per optimizer step")
    p.add_argument("--warmup", type=int, default=-1, help="linear warmup steps (-1: 5%% of the steps)")
    p.add_argument("--weight-decay", type=float, default=0.01, help="AdamW decay of weight matrices (not biases/LayerNorm)")
    p.add_argument("--clip", type=float, default=1.0, help="gradient norm clip (0: off)")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    p.add_argument("--eval-every", type=int, default=0, help="validate every N steps (0: ten times per run)")
    p.add_argument("--log-every", type=int, default=10, help="progress line every N steps")
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument("--threads", type=int, default=0, help="CPU threads for torch (0: torch's default)")
    p.add_argument("--max-minutes", type=float, default=0, help="stop (with a checkpoint) after this long (0: no limit)")
    args = p.parse_args(argv)
    for name in ("batch_tokens", "grad_accum"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.steps < 0 or args.epochs <= 0 or args.lr <= 0:
        p.error("--steps must be >= 0, --epochs and --lr > 0")
    return args


# ----------------------------------------------------------------------------- data


def make_batches(lengths: np.ndarray, batch_tokens: int, batch_size: int,
                 rng: Optional[np.random.Generator]) -> List[np.ndarray]:
    """Groups example indices into micro-batches of similar length.

    Sorting by length keeps padding small; with an rng, examples are shuffled
    inside each length bucket and the batch order is shuffled, so every epoch
    differs while staying a pure function of (seed, epoch), which is what
    makes resuming exact. A single example longer than batch_tokens forms its
    own batch.
    """
    order = np.arange(len(lengths)) if rng is None else rng.permutation(len(lengths))
    key = lengths[order] if rng is None else lengths[order] // BUCKET
    order = order[np.argsort(key, kind="stable")]
    batches, cur, longest = [], [], 0
    for i in order:
        n = max(longest, int(lengths[i]))
        if cur and (n * (len(cur) + 1) > batch_tokens or (batch_size and len(cur) >= batch_size)):
            batches.append(np.array(cur))
            cur, n = [], int(lengths[i])
        cur.append(i)
        longest = n
    if cur:
        batches.append(np.array(cur))
    if rng is not None:
        batches = [batches[j] for j in rng.permutation(len(batches))]
    return batches


def trainable(split: Split, context: int) -> np.ndarray:
    """Indices of examples that have at least one loss target after position 0
    once cut to the context; the others would only add padding."""
    keep = []
    for i in range(len(split)):
        _, mask = split.example(i)
        if mask[-context:][1:].any():
            keep.append(i)
    return np.array(keep, dtype=np.int64)


class Batch(NamedTuple):
    ids: torch.Tensor  # int64 [B,T], right-padded
    mask: torch.Tensor  # bool [B,T], True on loss targets (never on padding)
    tokens: int  # real (non-pad) tokens


def collate(split: Split, idx: np.ndarray, pad_id: int, context: int, device) -> Batch:
    """Right-pads examples into a Batch. Examples longer than the context keep
    their last tokens, where the target is."""
    rows = [split.example(i) for i in idx]
    rows = [(ids[-context:], mask[-context:]) for ids, mask in rows]
    T = max(len(ids) for ids, _ in rows)
    ids_out = np.full((len(rows), T), pad_id, dtype=np.int64)
    mask_out = np.zeros((len(rows), T), dtype=bool)
    for b, (ids, mask) in enumerate(rows):
        ids_out[b, : len(ids)] = ids
        mask_out[b, : len(mask)] = mask
    real = sum(len(ids) for ids, _ in rows)
    return Batch(torch.from_numpy(ids_out).to(device), torch.from_numpy(mask_out).to(device), real)


def masked_loss_sum(logits: torch.Tensor, ids: torch.Tensor, mask: torch.Tensor) -> Tuple[torch.Tensor, int]:
    """Summed cross-entropy of predicting ids[:, j] from logits[:, j-1] where mask[:, j];
    the number of such targets. Only the selected rows are upcast to float32."""
    tgt = mask[:, 1:]
    sel = logits[:, :-1][tgt].float()
    labels = ids[:, 1:][tgt]
    return F.cross_entropy(sel, labels, reduction="sum"), int(tgt.sum())


# ----------------------------------------------------------------------------- setup


class Setup(NamedTuple):
    model: gpt2.GPT2
    data: Dataset
    device: torch.device
    pad_id: int
    context: int
    train_idx: np.ndarray
    valid_idx: np.ndarray


def pick_device(name: str) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise FinetuneError("--device cuda: no CUDA device is available to torch")
    return torch.device(name)


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


def setup(args: argparse.Namespace, log: Callable[[str], None]) -> Setup:
    device = pick_device(args.device)
    data = load_dataset(args.data)
    model = load_model(args.model, device)
    check_compatible(model, data, args.model)
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
    return Setup(model, data, device, pad_id_of(model, data.meta), context, train_idx, valid_idx)


def param_groups(model: torch.nn.Module, weight_decay: float) -> List[Dict]:
    """Decay weight matrices and embeddings only; biases and LayerNorm gains
    (1-D) are not scales the model should shrink towards zero."""
    decay = [p for p in model.parameters() if p.requires_grad and p.dim() >= 2]
    other = [p for p in model.parameters() if p.requires_grad and p.dim() < 2]
    return [{"params": decay, "weight_decay": weight_decay}, {"params": other, "weight_decay": 0.0}]


def lr_lambda(warmup: int, total: int, min_ratio: float) -> Callable[[int], float]:
    """Linear warmup to the peak, then cosine down to min_ratio of it at `total`."""
    def f(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = min(1.0, (step - warmup) / max(1, total - warmup))
        return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))
    return f


def autocast(device: torch.device):
    """bf16 autocast on CUDA (fp32 master weights, fp32 loss); plain fp32 on the CPU,
    where bf16 matmuls are slow on most machines and torch 1.13's support is partial."""
    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


# ----------------------------------------------------------------------------- evaluation


@torch.no_grad()
def evaluate(s: Setup, batch_tokens: int, batch_size: int) -> Optional[float]:
    """Mean cross-entropy per target token of the validation split (None when empty)."""
    if len(s.valid_idx) == 0:
        return None
    s.model.eval()
    lengths = np.minimum(s.data.valid.lengths()[s.valid_idx], s.context)
    total, count = 0.0, 0
    for b in make_batches(lengths, batch_tokens, batch_size, None):
        ids, mask, _ = collate(s.data.valid, s.valid_idx[b], s.pad_id, s.context, s.device)
        with autocast(s.device):
            logits = s.model(ids)
        loss, n = masked_loss_sum(logits, ids, mask)
        total, count = total + loss.item(), count + n
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
        self.tokens = 0  # real (non-pad) training tokens seen, all sessions

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


def save_checkpoint(path: str, s: Setup, opt, sched, prog: Progress, args: argparse.Namespace) -> None:
    state = {"model": s.model.state_dict(), "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
             "progress": prog.to_dict(), "data": fingerprint(s), "seed": args.seed,
             "grad_accum": args.grad_accum, "batch_tokens": args.batch_tokens, "batch": args.batch,
             "torch_rng": torch.get_rng_state()}
    if s.device.type == "cuda":
        state["cuda_rng"] = torch.cuda.get_rng_state(s.device)
    tmp = path + ".tmp"
    torch.save(state, tmp)
    os.replace(tmp, path)  # a crash mid-save leaves the previous checkpoint intact


def load_checkpoint(path: str, s: Setup, opt, sched, prog: Progress, args: argparse.Namespace) -> None:
    try:
        # Our own file in --out; torch 1.13's weights_only unpickler cannot even read floats.
        state = torch.load(path, map_location=s.device, weights_only=False)
    except Exception as e:  # torch raises many kinds for a damaged file
        raise FinetuneError(f"cannot read {path}: {e} (delete it to start over)") from None
    if state["data"] != fingerprint(s):
        raise FinetuneError(f"{path} was made on another dataset ({state['data']}); use a new --out")
    for k in ("seed", "grad_accum", "batch_tokens", "batch"):
        if state[k] != getattr(args, k):
            raise FinetuneError(f"{path} was made with --{k.replace('_', '-')} {state[k]}, "
                                f"now {getattr(args, k)}: resume with the same value or use a new --out")
    s.model.load_state_dict(state["model"])
    opt.load_state_dict(state["optimizer"])
    sched.load_state_dict(state["scheduler"])
    prog.load(state["progress"])
    torch.set_rng_state(state["torch_rng"].cpu())
    if "cuda_rng" in state and s.device.type == "cuda":
        torch.cuda.set_rng_state(state["cuda_rng"].cpu(), s.device)


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


# ----------------------------------------------------------------------------- training


class Trainer:
    def __init__(self, s: Setup, args: argparse.Namespace, log: Callable[[str], None]):
        self.s, self.args, self.log = s, args, log
        self.lengths = np.minimum(s.data.train.lengths()[s.train_idx], s.context)
        self.n_batches = len(make_batches(self.lengths, args.batch_tokens, args.batch, None))
        self.total = args.steps or max(1, math.ceil(args.epochs * self.n_batches / args.grad_accum))
        warmup = args.warmup if args.warmup >= 0 else max(1, self.total // 20)
        self.opt = torch.optim.AdamW(param_groups(s.model, args.weight_decay), lr=args.lr, betas=(0.9, 0.95))
        self.sched = torch.optim.lr_scheduler.LambdaLR(self.opt, lr_lambda(warmup, self.total, args.min_lr_ratio))
        self.eval_every = args.eval_every or max(1, self.total // 10)
        self.prog = Progress()
        self.tokens_per_s = 0.0  # this session's training speed
        self._epoch, self._start, self._batches = -1, 0, []
        self._last_eval: Tuple[int, Optional[float]] = (-1, None)

    def micro_batch(self, m: int) -> np.ndarray:
        """The m-th micro-batch of the whole run, a pure function of (seed, m).
        Epochs may differ in batch count (shuffled buckets pack differently),
        so they are walked from the start; m never goes back."""
        while m >= self._start + len(self._batches):
            self._start += len(self._batches)
            self._epoch += 1
            rng = np.random.default_rng([self.args.seed, self._epoch])
            self._batches = make_batches(self.lengths, self.args.batch_tokens, self.args.batch, rng)
        return self.s.train_idx[self._batches[m - self._start]]

    def train_step(self) -> Tuple[float, int]:
        """One optimizer step over grad_accum micro-batches; the loss is the mean
        over all their target tokens (not a mean of per-batch means)."""
        s, a = self.s, self.args
        first = self.prog.step * a.grad_accum
        batches = [collate(s.data.train, self.micro_batch(first + k), s.pad_id, s.context, s.device)
                   for k in range(a.grad_accum)]
        n_targets = sum(int(b.mask[:, 1:].sum()) for b in batches)
        s.model.train()
        self.opt.zero_grad(set_to_none=True)
        total = 0.0
        for b in batches:
            with autocast(s.device):
                logits = s.model(b.ids)
            loss, _ = masked_loss_sum(logits, b.ids, b.mask)
            (loss / n_targets).backward()
            total += loss.item()
        if a.clip > 0:
            torch.nn.utils.clip_grad_norm_(s.model.parameters(), a.clip)
        self.opt.step()
        self.sched.step()
        self.prog.step += 1
        real = sum(b.tokens for b in batches)
        self.prog.tokens += real
        return total / n_targets, real

    def validate(self, tag: str) -> Optional[float]:
        """Validation loss at the current step, saving the best weights; a step
        already evaluated (a stop right after an eval) is not evaluated again."""
        a = self.args
        if self._last_eval[0] == self.prog.step:
            return self._last_eval[1]
        loss = evaluate(self.s, a.batch_tokens, a.batch)
        self._last_eval = (self.prog.step, loss)
        if loss is None:
            return None
        self.log(f"valid {tag} step {self.prog.step}: loss {loss:.4f} ppl {ppl(loss):.3f}")
        if self.prog.best_loss is None or loss < self.prog.best_loss:
            self.prog.best_loss, self.prog.best_step = loss, self.prog.step
            save_best(self.s, a)
            self.log(f"saved best (step {self.prog.step}) to {os.path.join(a.out, BEST)}")
        return loss


def fmt_secs(t: float) -> str:
    t = int(t)
    return f"{t // 3600}:{t // 60 % 60:02d}:{t % 60:02d}"


def default_log(msg: str) -> None:
    print(f"finetune: {msg}", file=sys.stderr, flush=True)


def run(args: argparse.Namespace, log: Callable[[str], None] = default_log,
        should_stop: Optional[Callable[[int], bool]] = None) -> Dict:
    """Trains and returns the summary. should_stop(step) ends the run early
    (as --max-minutes does), leaving a checkpoint to resume from."""
    torch.manual_seed(args.seed)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    s = setup(args, log)
    if s.device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
    os.makedirs(args.out, exist_ok=True)
    tr = Trainer(s, args, log)
    ckpt = os.path.join(args.out, CHECKPOINT)
    log(f"model {args.model}: {s.model.num_parameters():,} parameters on {s.device}; "
        f"{len(s.train_idx)} train / {len(s.valid_idx)} valid examples, {tr.n_batches} batches per epoch, "
        f"{tr.total} steps")
    if os.path.exists(ckpt):
        load_checkpoint(ckpt, s, tr.opt, tr.sched, tr.prog, args)
        log(f"resumed from {ckpt} at step {tr.prog.step}")
    else:
        tr.prog.loss_before = tr.validate("before")
        if tr.prog.loss_before is None:
            save_best(s, args)
    stopped = train_loop(tr, ckpt, should_stop)
    after = tr.validate("after")
    if after is None:
        save_best(s, args)  # no validation: the last weights are the result
    save_checkpoint(ckpt, s, tr.opt, tr.sched, tr.prog, args)
    summary = {"steps": tr.prog.step, "total_steps": tr.total, "stopped_early": stopped,
               "valid_loss_before": tr.prog.loss_before, "valid_ppl_before": ppl(tr.prog.loss_before),
               "valid_loss_after": after, "valid_ppl_after": ppl(after),
               "valid_loss_best": tr.prog.best_loss, "valid_ppl_best": ppl(tr.prog.best_loss),
               "best_step": tr.prog.best_step, "tokens_per_s": tr.tokens_per_s,
               "train_tokens": tr.prog.tokens, "device": str(s.device), "best_dir": os.path.join(args.out, BEST)}
    with open(os.path.join(args.out, "summary.json"), "w", encoding="utf-8") as f:
        json.dump(summary, f, indent=1)
    return summary


class Meter:
    """Training time, tokens and loss, for the whole session and for the
    window since the last progress line (which shows the current speed,
    not one dragged down by the first, slow steps)."""

    def __init__(self):
        self.time = self.tokens = self.steps = 0
        self.w_time = self.w_tokens = self.w_loss = self.w_steps = 0

    def add(self, seconds: float, tokens: int, loss: float) -> None:
        self.time, self.tokens, self.steps = self.time + seconds, self.tokens + tokens, self.steps + 1
        self.w_time, self.w_tokens = self.w_time + seconds, self.w_tokens + tokens
        self.w_loss, self.w_steps = self.w_loss + loss, self.w_steps + 1

    def take_window(self) -> Tuple[float, float]:
        """Mean loss and tokens/s since the last call."""
        out = (self.w_loss / max(1, self.w_steps), self.w_tokens / max(self.w_time, 1e-9))
        self.w_time = self.w_tokens = self.w_loss = self.w_steps = 0
        return out


def train_loop(tr: Trainer, ckpt: str, should_stop: Optional[Callable[[int], bool]]) -> bool:
    """Runs steps until the total; returns True when stopped early (time limit
    or should_stop); the caller saves the checkpoint."""
    a, start, m = tr.args, time.monotonic(), Meter()
    while tr.prog.step < tr.total:
        t0 = time.monotonic()
        loss, n = tr.train_step()
        m.add(time.monotonic() - t0, n, loss)
        tr.tokens_per_s = m.tokens / max(m.time, 1e-9)
        step = tr.prog.step
        if step % a.log_every == 0 or step == tr.total:
            w_loss, w_rate = m.take_window()
            eta = (tr.total - step) * m.time / m.steps
            tr.log(f"step {step}/{tr.total} loss {w_loss:.4f} lr {tr.sched.get_last_lr()[0]:.2e} "
                   f"tok/s {w_rate:.0f} elapsed {fmt_secs(time.monotonic() - start)} eta {fmt_secs(eta)}")
        if step % tr.eval_every == 0 and step < tr.total:
            tr.validate("during")
            save_checkpoint(ckpt, tr.s, tr.opt, tr.sched, tr.prog, a)
        out_of_time = a.max_minutes > 0 and time.monotonic() - start > a.max_minutes * 60
        if step < tr.total and (out_of_time or (should_stop and should_stop(step))):
            tr.log(f"stopping at step {step}/{tr.total}; run again with the same --out to resume")
            return True
    return False


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    try:
        summary = run(args)
    except (FinetuneError, DatasetError) as e:
        print(f"finetune: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("finetune: interrupted (resume from the last checkpoint with the same --out)", file=sys.stderr)
        return 130
    print(json.dumps(summary), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
