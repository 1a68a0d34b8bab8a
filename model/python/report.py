"""The training report finetune.py leaves in --out, for a person to open.

    report.json  the numbers: valid_ppl_before/after, train_tokens_per_s, steps, time_s, the loss
                 history ({"train": [[step, loss]...], "valid": [[step, loss]...]}) and the samples
    loss.svg     train and validation loss against the step (SVG written by hand: no plotting package)
    report.md    the numbers, the image, and held-out contexts with the real reply, the base model's
                 and the fine-tuned model's side by side

Replies are generated greedily with the cached step (stop tags banned for the first token, as
serving's default min_new_tokens does), from the prompt ids the dataset stored for
the validation example: the same prompt format and trimming that serving uses (`dialogbot
dataset` builds examples with serving's BuildPrompt), so what the page shows is what the bot
would answer.
"""

import html
import json
import math
import os
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

import numpy as np

import gpt2
import prompt_format as pf

REPORT_JSON, LOSS_SVG, REPORT_MD = "report.json", "loss.svg", "report.md"
# Serving's default sampling.min_new_tokens (internal/config): a stop tag cannot be the first token.
MIN_NEW_TOKENS = 1


class Sample(NamedTuple):
    context: List[List[str]]  # [speaker, text] turns, oldest first
    real: str
    base: str
    tuned: str


# ----------------------------------------------------------------------------- decoding


def byte_chars() -> List[str]:
    """GPT-2's byte -> printable character table, indexed by byte (byte-level BPE's alphabet)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs, n = bs[:], 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return [chr(c) for _, c in sorted(zip(bs, cs))]


def _byte_decoder() -> Dict[str, int]:
    """GPT-2's printable character -> byte table."""
    return {c: b for b, c in enumerate(byte_chars())}


class Decoder:
    """Ids -> text for a byte-level BPE tokenizer.json (GPT-2's kind, the only kind the project serves)."""

    def __init__(self, tokenizer_json: str):
        with open(tokenizer_json, encoding="utf-8") as f:
            tok = json.load(f)
        vocab = tok.get("model", {}).get("vocab")
        if not isinstance(vocab, dict):
            raise ValueError(f"{tokenizer_json}: no model.vocab (not a BPE tokenizer.json)")
        self.pieces = {int(i): s for s, i in vocab.items()}
        self.special = {}
        for t in tok.get("added_tokens", []):
            self.pieces[int(t["id"])] = t["content"]
            self.special[t["content"]] = int(t["id"])
        self.bytes = _byte_decoder()

    def decode(self, ids: Sequence[int]) -> str:
        out, buf = [], bytearray()
        for i in ids:
            piece = self.pieces.get(int(i), "")
            if piece in self.special:  # added tokens are text as they are, not byte-encoded
                out.append(buf.decode("utf-8", errors="replace"))
                buf = bytearray()
                out.append(piece)
                continue
            buf.extend(self.bytes.get(c, ord("?")) for c in piece)
        out.append(buf.decode("utf-8", errors="replace"))
        return "".join(out)

    def ids_of(self, names: Sequence[str]) -> List[int]:
        return [self.special[n] for n in names if n in self.special]


def split_turns(fmt: str, prompt: str) -> List[List[str]]:
    """A prompt string back into [speaker, text] turns (the cue at its end dropped)."""
    if fmt == pf.DIALOGPT:
        texts = [t.strip() for t in prompt.split(pf.EOS)]
        texts = [t for t in texts if t]
        # The bot speaks last before the cue's turn: alternate backwards from a user turn.
        return [[pf.USER if (len(texts) - 1 - i) % 2 == 0 else pf.BOT, t] for i, t in enumerate(texts)]
    turns, speaker, text = [], None, ""
    i = 0
    while i < len(prompt):
        for tag, who in ((pf.TAG_FIRST, pf.USER), (pf.TAG_SECOND, pf.BOT)):
            if prompt.startswith(tag, i):
                if speaker and text.strip():
                    turns.append([speaker, text.strip()])
                speaker, text = who, ""
                i += len(tag)
                break
        else:
            text += prompt[i]
            i += 1
    if speaker and text.strip():
        turns.append([speaker, text.strip()])
    return turns


def strip_stops(fmt: str, text: str) -> str:
    for s in pf.stop_strings(fmt):
        text = text.split(s)[0]
    return text.strip()


def sample_replies(base: gpt2.GPT2, tuned: gpt2.GPT2, split, idx: Sequence[int], tokenizer_json: str,
                   fmt: str, max_new: int) -> List[Sample]:
    """Greedy replies of both models to the prompts of the given held-out examples."""
    dec = Decoder(tokenizer_json)
    stops = dec.ids_of(pf.stop_strings(fmt))
    out = []
    for i in idx:
        ids, mask = split.example(int(i))
        first = int(np.argmax(mask)) if mask.any() else len(ids)
        prompt = [int(t) for t in ids[:first]][-(base.config.n_positions - max_new):]
        real = strip_stops(fmt, dec.decode(ids[first:]))
        replies = [strip_stops(fmt, dec.decode(gpt2.greedy(m.eval(), prompt, max_new, stops, MIN_NEW_TOKENS)))
                   for m in (base, tuned)]
        out.append(Sample(split_turns(fmt, dec.decode(prompt)), real, replies[0], replies[1]))
    return out


# ----------------------------------------------------------------------------- the image


def _ticks(lo: float, hi: float, n: int = 5) -> List[float]:
    """About n round tick values covering [lo, hi]."""
    if hi <= lo:
        return [lo]
    raw = (hi - lo) / n
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    first = math.ceil(lo / step) * step
    return [first + k * step for k in range(int((hi - first) / step + 1e-9) + 1)]


def _fmt(v: float) -> str:
    return f"{v:.0f}" if abs(v) >= 100 or v == int(v) else f"{v:.3g}"


def _points(series) -> List[Tuple[float, float]]:
    return [(p[0], p[1]) for p in series if p[1] is not None and math.isfinite(p[1])]


class Series(NamedTuple):
    name: str
    color: str
    points: Sequence[Sequence[float]]  # [step, loss]
    dots: bool = False


TRAIN_COLOR, VALID_COLOR = "#1f77b4", "#ff7f0e"


def loss_svg(train: Sequence[Sequence[float]], valid: Sequence[Sequence[float]],
             width: int = 720, height: int = 400) -> str:
    """Train (line) and validation (line with dots) loss against the step, with axes and labels."""
    return curves_svg([Series("train", TRAIN_COLOR, train), Series("validation", VALID_COLOR, valid, True)],
                      "Loss per target token", width, height)


def curves_svg(series: Sequence[Series], title: str, width: int = 720, height: int = 400) -> str:
    """Loss curves against the optimizer step, with axes, ticks, labels and a legend."""
    left, right, top, bottom = 64, 20, 36, 48
    series = [s._replace(points=_points(s.points)) for s in series]
    pts = [p for s in series for p in s.points]
    xs = [p[0] for p in pts] or [0, 1]
    ys = [p[1] for p in pts] or [0, 1]
    x0, x1 = min(xs), max(max(xs), min(xs) + 1)
    y0, y1 = min(ys), max(ys)
    pad = (y1 - y0) * 0.05 or 0.5
    y0, y1 = y0 - pad, y1 + pad
    pw, ph = width - left - right, height - top - bottom

    def X(v):
        return left + (v - x0) / (x1 - x0) * pw

    def Y(v):
        return top + (y1 - v) / (y1 - y0) * ph

    e = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" '
         'font-family="sans-serif" font-size="12">' % (width, height, width, height),
         '<rect width="100%" height="100%" fill="white"/>',
         f'<text x="{width / 2}" y="20" text-anchor="middle" font-size="14">{html.escape(title)}</text>']
    for t in _ticks(y0, y1):
        e.append(f'<line x1="{left}" x2="{left + pw}" y1="{Y(t):.1f}" y2="{Y(t):.1f}" stroke="#e5e5e5"/>')
        e.append(f'<text x="{left - 6}" y="{Y(t) + 4:.1f}" text-anchor="end">{_fmt(t)}</text>')
    for t in _ticks(x0, x1):
        if abs(t - round(t)) > 1e-9:
            continue
        e.append(f'<line x1="{X(t):.1f}" x2="{X(t):.1f}" y1="{top + ph}" y2="{top + ph + 5}" stroke="black"/>')
        e.append(f'<text x="{X(t):.1f}" y="{top + ph + 18}" text-anchor="middle">{_fmt(t)}</text>')
    e.append(f'<line x1="{left}" x2="{left}" y1="{top}" y2="{top + ph}" stroke="black"/>')
    e.append(f'<line x1="{left}" x2="{left + pw}" y1="{top + ph}" y2="{top + ph}" stroke="black"/>')
    e.append(f'<text x="{left + pw / 2}" y="{height - 10}" text-anchor="middle">optimizer step</text>')
    e.append(f'<text transform="translate(16 {top + ph / 2}) rotate(-90)" text-anchor="middle">'
             'cross-entropy (nats)</text>')
    for s in series:
        good = s.points
        if len(good) > 1:
            path = " ".join(f"{X(x):.1f},{Y(y):.1f}" for x, y in good)
            e.append(f'<polyline fill="none" stroke="{s.color}" stroke-width="1.5" points="{path}"/>')
        if s.dots or len(good) == 1:
            e += [f'<circle cx="{X(x):.1f}" cy="{Y(y):.1f}" r="3" fill="{s.color}"/>' for x, y in good]
    for k, s in enumerate(series):
        ly = top + 10 + 16 * k
        e.append(f'<line x1="{left + pw - 170}" x2="{left + pw - 150}" y1="{ly}" y2="{ly}" stroke="{s.color}" '
                 'stroke-width="2"/>')
        e.append(f'<text x="{left + pw - 144}" y="{ly + 4}">{html.escape(s.name)}</text>')
    e.append("</svg>")
    return "\n".join(e) + "\n"


# ----------------------------------------------------------------------------- the page


def _cell(text: str) -> str:
    text = html.escape(text or "(empty)", quote=False)
    return text.replace("|", "\\|").replace("\n", "<br>")


def _num(v: Optional[float], digits: int = 2) -> str:
    if v is None:
        return "n/a"
    return f"{v:,.{digits}f}"


def markdown(doc: Dict) -> str:
    lines = ["# Fine-tuning report", "",
             f"Model `{doc.get('model', '')}`, data `{doc.get('data', '')}`, device {doc.get('device', '')} "
             f"({doc.get('dtype', '')}, {doc.get('processes', 1)} process(es)).", "",
             "| | |", "|---|---|",
             f"| validation perplexity before | {_num(doc.get('valid_ppl_before'))} |",
             f"| validation perplexity after | {_num(doc.get('valid_ppl_after'))} |",
             f"| best validation perplexity (step {doc.get('best_step', 0)}) | {_num(doc.get('valid_ppl_best'))} |",
             f"| steps | {doc.get('steps', 0)} of {doc.get('total_steps', 0)} |",
             f"| training tokens | {doc.get('train_tokens', 0):,} |",
             f"| training speed | {_num(doc.get('train_tokens_per_s'), 0)} tokens/s |",
             f"| training time | {_num(doc.get('time_s'), 1)} s |", "",
             f"![loss curve]({LOSS_SVG})", ""]
    samples = doc.get("samples") or []
    if samples:
        lines += ["## Held-out replies", "",
                  "Contexts from the validation split (never trained on); replies are greedy, the stop tag banned "
                  "as the first token (as serving does); (empty) means a reply of only spaces before the stop tag.", "",
                  "| context | real reply | base model | fine-tuned |", "|---|---|---|---|"]
        for s in samples:
            ctx = "\n".join(f"{who}: {text}" for who, text in s["context"][-4:])
            lines.append(f"| {_cell(ctx)} | {_cell(s['real'])} | {_cell(s['base'])} | {_cell(s['tuned'])} |")
        lines.append("")
    return "\n".join(lines)


def finite(obj):
    """obj with every NaN or infinite float replaced by None (JSON has no such numbers)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite(v) for v in obj]
    return obj


def write(out_dir: str, doc: Dict) -> str:
    """Writes report.json, loss.svg and report.md into out_dir (each through a
    temporary file, so a reader never sees half a file); returns report.json's path."""
    hist = doc.get("history", {})
    doc = dict(doc, loss_svg=LOSS_SVG, report_md=REPORT_MD)
    files: List[Tuple[str, str]] = [
        (LOSS_SVG, loss_svg(hist.get("train", []), hist.get("valid", []))),
        (REPORT_MD, markdown(doc)),
        (REPORT_JSON, json.dumps(finite(doc), indent=1, ensure_ascii=False, allow_nan=False) + "\n"),
    ]
    for name, text in files:
        path = os.path.join(out_dir, name)
        with open(path + ".tmp", "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(path + ".tmp", path)
    return os.path.join(out_dir, REPORT_JSON)
