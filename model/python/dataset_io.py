"""Reader (and, for tests and tools, writer) of the dataset directory that
`dialogbot dataset` writes; the format is documented in model/dataset/FORMAT.md.

    train.tokens.u32   uint32 LE token ids of all examples, concatenated
    train.mask.u8      uint8 per token: 1 where the token is a loss target
    train.offsets.u64  uint64 LE, n_examples+1 offsets into the tokens
    valid.*            the same for the validation split
    meta.json          format_version, prompt_format, tokenizer, vocab_size, ...

Every check happens at load time so that a broken directory fails with one
clear message before any model is loaded.
"""

import json
import os
from typing import List, NamedTuple, Optional, Sequence, Tuple

import numpy as np

FORMAT_VERSION = 1
SPLITS = ("train", "valid")
_SUFFIXES = (("tokens.u32", "<u4"), ("mask.u8", "<u1"), ("offsets.u64", "<u8"))


class DatasetError(Exception):
    """A missing or invalid dataset directory; str() is a one-line message."""


class Split(NamedTuple):
    tokens: np.ndarray  # uint32 [total]
    mask: np.ndarray  # uint8 [total]
    offsets: np.ndarray  # int64 [n+1]

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def example(self, i: int) -> Tuple[np.ndarray, np.ndarray]:
        a, b = self.offsets[i], self.offsets[i + 1]
        return self.tokens[a:b], self.mask[a:b]

    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def target_tokens(self) -> int:
        """Loss targets; a target at position 0 has no context, so it never counts."""
        firsts = self.mask[self.offsets[:-1][self.lengths() > 0]]
        return int(self.mask.sum()) - int(firsts.sum())


class Dataset(NamedTuple):
    path: str
    meta: dict
    train: Split
    valid: Split


def load_dataset(path: str) -> Dataset:
    """Loads and checks a dataset directory."""
    if not os.path.isdir(path):
        raise DatasetError(f"dataset directory {path!r} does not exist (make it with `dialogbot dataset`)")
    meta = _load_meta(path)
    splits = {name: _load_split(path, name) for name in SPLITS}
    for name, split in splits.items():
        _check_split(name, split, meta)
    return Dataset(path, meta, splits["train"], splits["valid"])


def _load_meta(path: str) -> dict:
    p = os.path.join(path, "meta.json")
    try:
        with open(p, encoding="utf-8") as f:
            meta = json.load(f)
    except FileNotFoundError:
        raise DatasetError(f"{p}: missing (not a dataset directory?)") from None
    except (OSError, ValueError) as e:
        raise DatasetError(f"{p}: {e}") from None
    if not isinstance(meta, dict):
        raise DatasetError(f"{p}: not a JSON object")
    if meta.get("format_version") != FORMAT_VERSION:
        raise DatasetError(f"{p}: format_version {meta.get('format_version')!r}, this reader knows {FORMAT_VERSION}")
    for key in ("vocab_size", "train_examples", "valid_examples"):
        if not isinstance(meta.get(key), int) or meta[key] < 0:
            raise DatasetError(f"{p}: {key} must be a non-negative integer, got {meta.get(key)!r}")
    return meta


def _load_split(path: str, name: str) -> Split:
    arrays = []
    for suffix, dtype in _SUFFIXES:
        p = os.path.join(path, f"{name}.{suffix}")
        try:
            size = os.path.getsize(p)
        except OSError:
            raise DatasetError(f"{p}: missing") from None
        if size % np.dtype(dtype).itemsize:
            raise DatasetError(f"{p}: {size} bytes is not a whole number of {dtype} values (truncated?)")
        arrays.append(np.fromfile(p, dtype=dtype))
    tokens, mask, offsets = arrays
    return Split(tokens, mask, offsets.astype(np.int64))


def _check_split(name: str, s: Split, meta: dict) -> None:
    where = f"{name} split"
    want = meta[f"{name}_examples"]
    if len(s.offsets) != want + 1:
        raise DatasetError(f"{where}: {len(s.offsets)} offsets, meta.json says {want} examples (want {want + 1})")
    if len(s.mask) != len(s.tokens):
        raise DatasetError(f"{where}: {len(s.tokens)} tokens but {len(s.mask)} mask bytes")
    if s.offsets[0] != 0 or s.offsets[-1] != len(s.tokens):
        raise DatasetError(f"{where}: offsets must run from 0 to {len(s.tokens)}, got {s.offsets[0]}..{s.offsets[-1]}")
    if np.any(np.diff(s.offsets) < 0):
        raise DatasetError(f"{where}: offsets decrease at example {int(np.argmax(np.diff(s.offsets) < 0))}")
    if len(s.tokens) and int(s.tokens.max()) >= meta["vocab_size"]:
        raise DatasetError(f"{where}: token id {int(s.tokens.max())} >= vocab_size {meta['vocab_size']}")
    if len(s.mask) and int(s.mask.max()) > 1:
        raise DatasetError(f"{where}: mask values must be 0 or 1, found {int(s.mask.max())}")


def write_split(path: str, name: str, examples: Sequence[Tuple[Sequence[int], Sequence[int]]]) -> None:
    """Writes one split from (ids, mask) pairs: the format's writer, for tests and tools."""
    lens = [len(ids) for ids, _ in examples]
    offsets = np.concatenate([[0], np.cumsum(lens, dtype=np.int64)]).astype("<u8")
    tokens = np.array([t for ids, _ in examples for t in ids], dtype="<u4")
    mask = np.array([m for _, mk in examples for m in mk], dtype="<u1")
    for arr, suffix in ((tokens, "tokens.u32"), (mask, "mask.u8"), (offsets, "offsets.u64")):
        arr.tofile(os.path.join(path, f"{name}.{suffix}"))


def write_dataset(path: str, train: List, valid: List, vocab_size: int, context_length: int,
                  prompt_format: str = "rudialogpt", extra: Optional[dict] = None) -> None:
    """Writes a whole dataset directory (meta.json included) from (ids, mask) pairs."""
    os.makedirs(path, exist_ok=True)
    write_split(path, "train", train)
    write_split(path, "valid", valid)
    meta = {"format_version": FORMAT_VERSION, "prompt_format": prompt_format, "tokenizer": "",
            "tokenizer_sha256": "", "vocab_size": vocab_size, "context_length": context_length,
            "train_examples": len(train), "valid_examples": len(valid)}
    meta.update(extra or {})
    with open(os.path.join(path, "meta.json"), "w", encoding="utf-8") as f:
        json.dump(meta, f, ensure_ascii=False, indent=1)
