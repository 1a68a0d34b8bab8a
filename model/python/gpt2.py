"""A readable GPT-2 in PyTorch that loads Hugging Face GPT-2 weights by their HF names.

Two forwards share the same blocks:
  * GPT2.hidden(input_ids, position_ids, mask) -> final hidden states [B,T,C] (after ln_f): the
    training forward. Fine-tuning picks the rows it has targets for and only those go through
    GPT2.head (so the [B,T,V] logits are never built); packed rows pass position ids that restart
    per example and a block-diagonal causal mask. GPT2.forward(input_ids) -> logits [B,T,V] is
    hidden + head over every position (perplexity, tests).
  * GPT2.step(input_ids, position_ids, attn_mask, past, last_index) -> (logits [B,V] float32,
    present [L,2,B,H,T,D]): the cached step that export.py traces and the C++ bridge calls.

The step is written for torch.jit.trace: every tensor it creates comes from its inputs (no
torch.arange / torch.zeros / torch.tensor inside), every size comes from .size() of an input,
and casts to the model dtype use type_as, so one trace serves any B, T, S and runs on CUDA
although it was traced on the CPU.

Weights are read from config.json plus model.safetensors (parsed here, no extra packages) or
pytorch_model.bin. HF stores GPT-2's projections as Conv1D with weight [in, out]; we keep them as
nn.Linear ([out, in], transposed on load and save) so torch.ao.quantization.quantize_dynamic works.
Works on torch 1.13 (Debian) and 2.x.
"""

from __future__ import annotations

import json
import math
import os
import struct
from dataclasses import dataclass, field
from typing import Dict, NamedTuple, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

import bridge_ops  # defines dialogbot::attend_one, which the decode step calls

# ----------------------------------------------------------------------------- config

_ACTIVATIONS = ("gelu_new", "gelu_pytorch_tanh", "gelu", "relu")


@dataclass
class GPT2Config:
    n_layer: int = 12
    n_head: int = 12
    n_embd: int = 768
    vocab_size: int = 50257
    n_positions: int = 1024
    layer_norm_epsilon: float = 1e-5
    n_inner: Optional[int] = None  # None: 4 * n_embd, as in HF
    activation_function: str = "gelu_new"
    dropout: float = 0.1  # HF's embd/attn/resid_pdrop; only active under .train()
    bos_token_id: Optional[int] = None
    eos_token_id: Optional[int] = None
    # The rest of the HF config.json, kept so save_hf writes back what it read.
    hf: Dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def head_dim(self) -> int:
        return self.n_embd // self.n_head

    @property
    def inner(self) -> int:
        return self.n_inner or 4 * self.n_embd

    @classmethod
    def from_dict(cls, d: Dict) -> "GPT2Config":
        mt = d.get("model_type", "gpt2")
        if mt != "gpt2":
            raise ValueError(f"model_type {mt!r} is not gpt2")
        # These HF options change the maths; refuse rather than silently differ.
        for opt in ("scale_attn_by_inverse_layer_idx", "reorder_and_upcast_attn", "add_cross_attention"):
            if d.get(opt):
                raise ValueError(f"config option {opt}=true is not supported")
        if d.get("scale_attn_weights") is False:
            raise ValueError("config option scale_attn_weights=false is not supported")
        act = d.get("activation_function", "gelu_new")
        if act not in _ACTIVATIONS:
            raise ValueError(f"activation_function {act!r} is not supported (want one of {_ACTIVATIONS})")
        cfg = cls(
            n_layer=int(d["n_layer"]),
            n_head=int(d["n_head"]),
            n_embd=int(d["n_embd"]),
            vocab_size=int(d["vocab_size"]),
            n_positions=int(d.get("n_positions", d.get("n_ctx", 1024))),
            layer_norm_epsilon=float(d.get("layer_norm_epsilon", 1e-5)),
            n_inner=d.get("n_inner"),
            activation_function=act,
            dropout=float(d.get("resid_pdrop", 0.1)),
            bos_token_id=d.get("bos_token_id"),
            eos_token_id=d.get("eos_token_id"),
            hf=dict(d),
        )
        if cfg.n_embd % cfg.n_head:
            raise ValueError(f"n_embd {cfg.n_embd} is not divisible by n_head {cfg.n_head}")
        return cfg

    @classmethod
    def from_json(cls, path: str) -> "GPT2Config":
        with open(path, encoding="utf-8") as f:
            return cls.from_dict(json.load(f))

    def to_hf_dict(self) -> Dict:
        """config.json in Hugging Face GPT-2 form (readable by transformers and load_hf)."""
        d = dict(self.hf)
        d.update(
            model_type="gpt2",
            architectures=["GPT2LMHeadModel"],
            n_layer=self.n_layer,
            n_head=self.n_head,
            n_embd=self.n_embd,
            vocab_size=self.vocab_size,
            n_positions=self.n_positions,
            n_ctx=self.n_positions,
            layer_norm_epsilon=self.layer_norm_epsilon,
            n_inner=self.n_inner,
            activation_function=self.activation_function,
            resid_pdrop=self.dropout,
            embd_pdrop=self.dropout,
            attn_pdrop=self.dropout,
            tie_word_embeddings=True,
        )
        d.setdefault("scale_attn_weights", True)
        d.setdefault("initializer_range", 0.02)
        for k in ("bos_token_id", "eos_token_id"):
            if getattr(self, k) is not None:
                d[k] = getattr(self, k)
        return d


# ----------------------------------------------------------------------------- model

# torch >= 2.0 has fused attention (flash / memory-efficient kernels on CUDA, a fused kernel on
# the CPU); Debian's torch 1.13 does not. Module-level so tests can compare both paths.
HAS_SDPA = hasattr(F, "scaled_dot_product_attention")
USE_SDPA = HAS_SDPA
# The output GEMM runs over a vocabulary padded to a multiple of this many rows (GPT-2's 50,257 ->
# 50,304): tensor cores and vector units want aligned shapes. Only the product is padded; the
# weights, the logits returned and the exported vocabulary keep their size.
HEAD_PAD = 64

# Softmax runs in float32 and masked scores get float32's most negative value (not -inf), so a
# fully masked row (a padding query) stays finite instead of turning into NaN.
_MASK_VALUE = torch.finfo(torch.float32).min


@torch.jit.script
def linear(x: torch.Tensor, w: torch.Tensor, b: Optional[torch.Tensor]) -> torch.Tensor:
    """F.linear, but one row (a decode step at batch 1) goes through torch.mv.

    On the CPU, OpenBLAS's gemm with one row reads the weights at about 10 GB/s and gemv at
    about 27 GB/s (measured here), and reading the weights is all a batch-1 step does. Scripted,
    so the branch survives torch.jit.trace.
    """
    if x.numel() == x.size(-1):
        y = torch.mv(w, x.reshape(-1))
        if b is not None:
            y = y + b
        return y.view(x.shape[:-1] + [w.size(0)])
    return F.linear(x, w, b)


@torch.jit.script
def cached_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, past_k: torch.Tensor, past_v: torch.Tensor,
    mask: torch.Tensor, scale: float,
) -> torch.Tensor:
    """Softmax attention of q [B,H,T,D] over past_k/v [B,H,S,D] and the new k/v [B,H,T,D].

    The cache is never concatenated with the new keys (that would copy it every step): scores
    against each part are computed apart and the probabilities split again. One new token (decode)
    goes to dialogbot::attend_one (bridge_ops.attend_one_reference in Python; in the bridge,
    cbridge/attend.cpp keeps it off libtorch's sleeping threads, docs/cpu.md). Scripted, so the
    branch survives torch.jit.trace.
    """
    s = past_k.size(-2)
    if q.size(2) == 1:
        return torch.ops.dialogbot.attend_one(q, k, v, past_k, past_v, mask, scale)
    past_scores = q @ past_k.transpose(-1, -2)
    scores = torch.cat([past_scores, q @ k.transpose(-1, -2)], dim=-1).float() * scale
    scores = scores.masked_fill(mask.logical_not(), -3.4028234663852886e38)
    probs = F.softmax(scores, dim=-1).type_as(v)
    return probs[..., :s] @ past_v + probs[..., s:] @ v


def dropout(mod: nn.Dropout, x: torch.Tensor) -> torch.Tensor:
    """mod(x), drawing the mask faster on the CPU.

    Without MKL (Debian's torch) the CPU bernoulli_ behind nn.Dropout draws one number at a
    time on one thread: 20 ms for 3M elements here, a fifth of a training step. torch.rand
    fills the same tensor in a third of that; keep = rand >= p is the same distribution.
    """
    if not mod.training or mod.p == 0 or x.device.type != "cpu":
        return mod(x)
    keep = torch.rand(x.shape, dtype=torch.float32) >= mod.p
    return x * keep.to(x.dtype).mul_(1.0 / (1.0 - mod.p))


def _linear(mod: nn.Module, x: torch.Tensor) -> torch.Tensor:
    # Quantized modules (export --quantize int8) keep their own forward.
    if isinstance(mod, nn.Linear):
        return linear(x, mod.weight, mod.bias)
    return mod(x)


class Attention(nn.Module):
    def __init__(self, cfg: GPT2Config):
        super().__init__()
        self.n_head, self.head_dim, self.n_embd = cfg.n_head, cfg.head_dim, cfg.n_embd
        self.scale = 1.0 / math.sqrt(cfg.head_dim)
        self.c_attn = nn.Linear(cfg.n_embd, 3 * cfg.n_embd)
        self.c_proj = nn.Linear(cfg.n_embd, cfg.n_embd)
        self.attn_dropout = nn.Dropout(cfg.dropout)
        self.resid_dropout = nn.Dropout(cfg.dropout)

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        # [B,T,C] -> [B,H,T,D]; B and T come from the input so a trace keeps them dynamic.
        return x.view(x.size(0), x.size(1), self.n_head, self.head_dim).transpose(1, 2)

    def _full_attention(self, q, k, v, mask: "TrainMask") -> torch.Tensor:
        """Attention with dropout over the sequence itself (no cache); mask as GPT2.train_mask builds it."""
        p = self.attn_dropout.p if self.training else 0.0
        if mask.sdpa:
            if mask.allowed is None:
                return F.scaled_dot_product_attention(q, k, v, dropout_p=p, is_causal=True)
            return F.scaled_dot_product_attention(q, k, v, attn_mask=mask.allowed, dropout_p=p)
        # torch 1.13: the [B,H,T,T] scores are unavoidable, so make as few of them as possible:
        # scale and mask in place on the product (its backward needs only q and k), then one
        # softmax. Softmax runs in float32 also under bf16 autocast.
        scores = (q @ k.transpose(-1, -2)).float()
        scores.mul_(self.scale).masked_fill_(mask.blocked, _MASK_VALUE)
        return dropout(self.attn_dropout, F.softmax(scores, dim=-1).type_as(v)) @ v

    def forward(self, x, mask, past_k=None, past_v=None):
        """Attention of the new tokens x over the cache (past_k/v, may be None) and themselves.

        The cache is never concatenated with the new keys/values (that would copy it every step):
        the scores against each part are computed apart and the probabilities split again.
        Returns (output [B,T,C], k, v) with k/v [B,H,T,D] of the new tokens.
        """
        q, k, v = _linear(self.c_attn, x).split(self.n_embd, dim=2)
        q, k, v = self._heads(q), self._heads(k), self._heads(v)
        if past_k is None:  # training / full-sequence forward
            y = self._full_attention(q, k, v, mask)
        else:
            y = cached_attention(q, k, v, past_k, past_v, mask, self.scale)
        y = y.transpose(1, 2).reshape(x.size(0), x.size(1), self.n_embd)
        return dropout(self.resid_dropout, _linear(self.c_proj, y)), k, v


class MLP(nn.Module):
    def __init__(self, cfg: GPT2Config):
        super().__init__()
        self.c_fc = nn.Linear(cfg.n_embd, cfg.inner)
        self.c_proj = nn.Linear(cfg.inner, cfg.n_embd)
        self.dropout = nn.Dropout(cfg.dropout)
        self.act = cfg.activation_function

    def forward(self, x):
        h = _linear(self.c_fc, x)
        # bf16 GELU (and its backward) is twice as slow as float32's on the CPU. Training only:
        # a trace (eval) must not bake in a cast.
        upcast = self.training and h.dtype == torch.bfloat16 and h.device.type == "cpu"
        if upcast:
            h = h.float()
        if self.act in ("gelu_new", "gelu_pytorch_tanh"):
            h = F.gelu(h, approximate="tanh")  # HF's gelu_new is the tanh approximation
        elif self.act == "gelu":
            h = F.gelu(h)
        else:
            h = F.relu(h)
        if upcast:
            h = h.to(torch.bfloat16)
        return dropout(self.dropout, _linear(self.c_proj, h))


class Block(nn.Module):
    def __init__(self, cfg: GPT2Config):
        super().__init__()
        self.ln_1 = nn.LayerNorm(cfg.n_embd, eps=cfg.layer_norm_epsilon)
        self.attn = Attention(cfg)
        self.ln_2 = nn.LayerNorm(cfg.n_embd, eps=cfg.layer_norm_epsilon)
        self.mlp = MLP(cfg)

    def forward(self, x, mask, past_k=None, past_v=None):
        a, k, v = self.attn(self.ln_1(x), mask, past_k, past_v)
        x = x + a
        return x + self.mlp(self.ln_2(x)), k, v


class TrainMask(NamedTuple):
    """Who may attend to whom in a full-sequence forward, built once per forward for all layers.

    sdpa: use F.scaled_dot_product_attention; allowed: bool [B,1,T,T] (True = may attend) or None
    for plain causal attention (which lets SDPA pick flash attention); blocked: the complement,
    for the torch 1.13 path (masked_fill_ wants the positions to fill).
    """

    sdpa: bool
    allowed: Optional[torch.Tensor]
    blocked: Optional[torch.Tensor]


class GPT2(nn.Module):
    """GPT-2 whose state_dict keys are HF's (transformer.h.0.attn.c_attn.weight, ...).

    lm_head is tied to transformer.wte unless a checkpoint brings its own, different lm_head.
    """

    def __init__(self, config: GPT2Config):
        super().__init__()
        self.config = config
        self.transformer = nn.ModuleDict(
            dict(
                wte=nn.Embedding(config.vocab_size, config.n_embd),
                wpe=nn.Embedding(config.n_positions, config.n_embd),
                drop=nn.Dropout(config.dropout),
                h=nn.ModuleList([Block(config) for _ in range(config.n_layer)]),
                ln_f=nn.LayerNorm(config.n_embd, eps=config.layer_norm_epsilon),
            )
        )
        self.lm_head: Optional[nn.Linear] = None  # None: tied to wte

    def _logits(self, x: torch.Tensor) -> torch.Tensor:
        x = self.transformer.ln_f(x)
        if self.lm_head is not None:
            return _linear(self.lm_head, x)
        return linear(x, self.transformer.wte.weight, None)

    def _embed(self, input_ids, position_ids):
        t = self.transformer
        return dropout(t.drop, t.wte(input_ids) + t.wpe(position_ids))

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        """Causal forward, positions 0..T-1; logits [B,T,V] in model dtype."""
        return self.head(self.hidden(input_ids))

    @staticmethod
    def train_mask(segments: Optional[torch.Tensor], T: int, device) -> TrainMask:
        """The attention mask of a full-sequence forward over T positions.

        segments: None (each row is one sequence) or int [B,T], the example each position
        belongs to (packed rows): a token attends to the tokens before it in its own example
        only, so packing never lets one example see another.
        """
        allowed = None
        if segments is not None or not USE_SDPA:
            allowed = torch.ones(T, T, dtype=torch.bool, device=device).tril().view(1, 1, T, T)
        if segments is not None:
            allowed = allowed & (segments.unsqueeze(2) == segments.unsqueeze(1)).unsqueeze(1)
        if USE_SDPA:
            return TrainMask(True, allowed, None)
        return TrainMask(False, None, allowed.logical_not())

    def hidden(self, input_ids: torch.Tensor, position_ids: Optional[torch.Tensor] = None,
               segments: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Final hidden states [B,T,C] (after ln_f) of a causal forward.

        position_ids: None (0..T-1) or int [B,T] (restarting per packed example);
        segments: see train_mask.
        """
        T = input_ids.size(1)
        if position_ids is None:
            if T > self.config.n_positions:
                raise ValueError(f"sequence of {T} tokens is longer than n_positions {self.config.n_positions}")
            position_ids = torch.arange(T, device=input_ids.device).unsqueeze(0)
        mask = self.train_mask(segments, T, input_ids.device)
        x = self._embed(input_ids, position_ids)
        for block in self.transformer.h:
            x, _, _ = block(x, mask)
        return self.transformer.ln_f(x)

    def head(self, x: torch.Tensor) -> torch.Tensor:
        """Logits [..., V] of final hidden states, through an output GEMM over a vocabulary padded
        to a multiple of HEAD_PAD rows (the padding rows are zeros and sliced off again)."""
        if self.lm_head is not None and not isinstance(self.lm_head, nn.Linear):
            return self.lm_head(x)  # quantized by export --quantize int8
        w = self.lm_head.weight if self.lm_head is not None else self.transformer.wte.weight
        V = w.size(0)
        extra = -V % HEAD_PAD
        if extra:
            w = F.pad(w, (0, 0, 0, extra))
        return F.linear(x, w)[..., :V]

    def step(
        self,
        input_ids: torch.Tensor,
        position_ids: torch.Tensor,
        attn_mask: torch.Tensor,
        past: torch.Tensor,
        last_index: torch.Tensor,
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """The cached step (the contract the C++ bridge calls).

        input_ids, position_ids: int64 [B,T]; attn_mask: bool [B,1,T,S+T], True = may attend;
        past: [L,2,B,H,S,D] in model dtype (0 = keys, 1 = values; S may be 0);
        last_index: int64 [B]. Returns (logits float32 [B,V] at position last_index[b] of row b,
        present [L,2,B,H,T,D] with the keys/values of the T new tokens).
        """
        x = self._embed(input_ids, position_ids)
        presents = []
        for i, block in enumerate(self.transformer.h):
            x, k, v = block(x, attn_mask, past[i, 0], past[i, 1])
            presents.append(torch.stack([k, v]))
        # Pick each row's last position before ln_f/lm_head: a prefill of T tokens then costs
        # one [B,C]x[C,V] product instead of T of them.
        idx = last_index.view(-1, 1, 1).expand(-1, 1, x.size(-1))
        x = x.gather(1, idx).squeeze(1)
        return self._logits(x).float(), torch.stack(presents)

    @property
    def dtype(self) -> torch.dtype:
        return self.transformer.wte.weight.dtype

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())


# ----------------------------------------------------------------------------- HF weights

# Per-layer HF names of the Conv1D projections, whose weights are [in, out] in HF files.
_CONV1D = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")
# Buffers some HF checkpoints carry (causal-mask constants), not weights.
_IGNORED_SUFFIXES = (".attn.bias", ".attn.masked_bias")

_ST_DTYPES = {
    "F32": torch.float32,
    "F16": torch.float16,
    "BF16": torch.bfloat16,
    "F64": torch.float64,
    "I64": torch.int64,
    "I32": torch.int32,
    "I16": torch.int16,
    "I8": torch.int8,
    "U8": torch.uint8,
    "BOOL": torch.bool,
}
_ST_NAMES = {v: k for k, v in _ST_DTYPES.items()}


def read_safetensors(path: str) -> Dict[str, torch.Tensor]:
    """Reads a .safetensors file: 8-byte little-endian header length, JSON header, raw tensors."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 8:
        raise ValueError(f"{path}: too short for a safetensors file")
    (n,) = struct.unpack("<Q", data[:8])
    if n > len(data) - 8:
        raise ValueError(f"{path}: header length {n} exceeds file size {len(data)}")
    try:
        header = json.loads(data[8 : 8 + n])
    except ValueError as e:
        raise ValueError(f"{path}: bad safetensors header: {e}") from e
    body = memoryview(data)[8 + n :]
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        out[name] = _st_tensor(path, name, info, body)
    return out


def _st_tensor(path, name, info, body) -> torch.Tensor:
    dtype = _ST_DTYPES.get(info.get("dtype"))
    if dtype is None:
        raise ValueError(f"{path}: tensor {name}: unsupported dtype {info.get('dtype')!r}")
    start, end = info["data_offsets"]
    shape = info["shape"]
    numel = math.prod(shape)
    esize = torch.tensor([], dtype=dtype).element_size()
    if end - start != numel * esize or end > len(body):
        raise ValueError(f"{path}: tensor {name}: data offsets {start}..{end} do not fit shape {shape}")
    if numel == 0:
        return torch.empty(shape, dtype=dtype)
    # bytearray: frombuffer wants a writable buffer; clone nothing else.
    return torch.frombuffer(bytearray(body[start:end]), dtype=dtype).view(shape)


def write_safetensors(path: str, tensors: Dict[str, torch.Tensor], metadata: Optional[Dict] = None) -> None:
    """Writes tensors in safetensors layout (header padded to 8 bytes, as the reference does)."""
    header, blobs, offset = {}, [], 0
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    for name, t in tensors.items():
        t = t.detach().to("cpu").contiguous()
        raw = t.view(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b""
        header[name] = {"dtype": _ST_NAMES[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    hb = json.dumps(header, separators=(",", ":")).encode("utf-8")
    hb += b" " * (-len(hb) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(hb)))
        f.write(hb)
        for b in blobs:
            f.write(b)
    os.replace(tmp, path)


def _hf_state_dict(path: str) -> Dict[str, torch.Tensor]:
    st = os.path.join(path, "model.safetensors")
    if os.path.exists(st):
        return read_safetensors(st)
    pt = os.path.join(path, "pytorch_model.bin")
    if os.path.exists(pt):
        try:
            return torch.load(pt, map_location="cpu", weights_only=True)
        except TypeError:  # torch without weights_only
            return torch.load(pt, map_location="cpu")
    raise FileNotFoundError(f"{path}: no model.safetensors or pytorch_model.bin")


def _normalize_keys(sd: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """Gives every key the `transformer.` prefix (OpenAI's original gpt2 files have none)."""
    out = {}
    for k, v in sd.items():
        if k.endswith(_IGNORED_SUFFIXES):
            continue
        if not k.startswith(("transformer.", "lm_head.")):
            k = "transformer." + k
        out[k] = v
    return out


def load_hf(path: str, device="cpu", dtype: torch.dtype = torch.float32) -> GPT2:
    """Loads an HF GPT-2 directory (config.json + model.safetensors or pytorch_model.bin)."""
    cfg = GPT2Config.from_json(os.path.join(path, "config.json"))
    sd = _normalize_keys(_hf_state_dict(path))
    model = GPT2(cfg)
    head = sd.pop("lm_head.weight", None)
    if head is not None and not torch.equal(head, sd.get("transformer.wte.weight", head)):
        model.lm_head = nn.Linear(cfg.n_embd, cfg.vocab_size, bias=False)
        sd["lm_head.weight"] = head
    for k in list(sd):
        if k.endswith(_CONV1D) and sd[k].dim() == 2:
            sd[k] = sd[k].t()
    sd = {k: v.to(torch.float32) for k, v in sd.items()}  # upcast once, so fp16 files load exactly
    missing, unexpected = model.load_state_dict(sd, strict=False)
    if missing or unexpected:
        raise ValueError(f"{path}: weights do not match config: missing {missing[:5]}, unexpected {unexpected[:5]}")
    return model.to(device=device, dtype=dtype).eval()


def save_hf(model: GPT2, out_dir: str, dtype: Optional[torch.dtype] = None) -> None:
    """Writes config.json + model.safetensors in HF layout (keys `transformer.*`, Conv1D [in,out]).

    Tied embeddings are saved once, as transformer.wte.weight, the way transformers does.
    """
    os.makedirs(out_dir, exist_ok=True)
    tensors = {}
    for k, v in model.state_dict().items():
        v = v.detach()
        if k.endswith(_CONV1D):
            v = v.t()
        if dtype is not None:
            v = v.to(dtype)
        tensors[k] = v.contiguous()
    cfg = model.config.to_hf_dict()
    if model.lm_head is not None:
        cfg["tie_word_embeddings"] = False
    cfg["torch_dtype"] = str(dtype or model.dtype).replace("torch.", "")
    cfg["dtype"] = cfg["torch_dtype"]
    write_safetensors(os.path.join(out_dir, "model.safetensors"), tensors, {"format": "pt"})
    tmp = os.path.join(out_dir, "config.json.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(cfg, f, indent=2, ensure_ascii=False)
        f.write("\n")
    os.replace(tmp, os.path.join(out_dir, "config.json"))


def random_gpt2(config: GPT2Config, seed: int = 0) -> GPT2:
    """A randomly initialised GPT-2, HF-style: normal(0, 0.02) weights, zero biases, unit LayerNorms,
    residual projections scaled by 1/sqrt(2*n_layer). Seeded by its own generator, so the global
    RNG is left alone and the same seed gives the same weights everywhere."""
    model = GPT2(config)
    g = torch.Generator().manual_seed(seed)
    std = 0.02
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("c_proj.weight"):
                p.copy_(torch.randn(p.shape, generator=g) * (std / math.sqrt(2 * config.n_layer)))
            elif name.endswith("weight") and p.dim() == 2:
                p.copy_(torch.randn(p.shape, generator=g) * std)
            elif ".ln_" in name and name.endswith("weight"):
                p.fill_(1.0)
            else:
                p.zero_()
    return model.eval()


# ----------------------------------------------------------------------------- helpers


def causal_step_inputs(lengths, past_len: int = 0, pad_id: int = 0, ids=None, device="cpu"):
    """Builds step() inputs for right-padded rows of the given lengths after past_len cached tokens.

    A convenience for tests and callers in Python (the bridge builds these itself). ids: optional
    list of per-row id lists; missing ids are pad_id. Returns (input_ids, position_ids, attn_mask,
    last_index).
    """
    B, T = len(lengths), max(lengths)
    input_ids = torch.full((B, T), pad_id, dtype=torch.long)
    if ids is not None:
        for b, row in enumerate(ids):
            input_ids[b, : len(row)] = torch.tensor(row, dtype=torch.long)
    position_ids = (torch.arange(T) + past_len).unsqueeze(0).repeat(B, 1)
    q = torch.arange(T).view(1, T, 1)
    kpos = torch.arange(past_len + T).view(1, 1, -1)
    mask = kpos <= q + past_len
    valid = torch.arange(past_len + T).view(1, 1, -1) < (past_len + torch.tensor(lengths)).view(B, 1, 1)
    mask = (mask & valid).unsqueeze(1)
    last_index = torch.tensor(lengths, dtype=torch.long) - 1
    return input_ids.to(device), position_ids.to(device), mask.to(device), last_index.to(device)


def empty_past(config: GPT2Config, batch: int, dtype=torch.float32, device="cpu") -> torch.Tensor:
    """A cache with S = 0, shaped [L,2,B,H,0,D]."""
    return torch.zeros(config.n_layer, 2, batch, config.n_head, 0, config.head_dim, dtype=dtype, device=device)


@torch.no_grad()
def greedy(model: GPT2, prompt_ids, max_new: int, stop_ids=(), min_new: int = 0) -> list:
    """Greedy decoding with the cached step (stops after emitting a stop id; the
    stop ids are banned for the first min_new tokens, as serving's min_new_tokens)."""
    dev = model.transformer.wte.weight.device
    ids, pos, mask, last = causal_step_inputs([len(prompt_ids)], ids=[prompt_ids], device=dev)
    past = empty_past(model.config, 1, model.dtype, dev)
    out = []
    for _ in range(max_new):
        logits, present = model.step(ids, pos, mask, past, last)
        past = torch.cat([past, present], dim=4)
        if len(out) < min_new and stop_ids:
            logits[0, list(stop_ids)] = float("-inf")
        nxt = int(logits[0].argmax())
        out.append(nxt)
        if nxt in stop_ids:
            break
        S = past.size(4)
        ids = torch.tensor([[nxt]], device=dev)
        pos = torch.tensor([[S]], device=dev)
        mask = torch.ones(1, 1, 1, S + 1, dtype=torch.bool, device=dev)
        last = torch.zeros(1, dtype=torch.long, device=dev)
    return out
