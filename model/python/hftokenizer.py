"""Hugging Face tokenizer.json for a GPT-2 style model directory.

A hub repo may ship tokenizer.json, or only the older vocab.json + merges.txt (plus optional
added_tokens.json / special_tokens_map.json / tokenizer_config.json). The Go side reads only
tokenizer.json, so for the latter we build one: byte-level BPE exactly as HF's GPT2TokenizerFast
would convert it, with merges as [left, right] pairs (the form tokenizers >= 0.20 writes and
the files in ../shared use).
"""

from __future__ import annotations

import json
import os
import shutil
from typing import Dict, List, Optional

# Tokens of the dialogue format; when a vocab has them they must encode as one id each,
# so they are registered as added (special) tokens even if only vocab.json lists them.
DIALOGUE_TAGS = ("@@ПЕРВЫЙ@@", "@@ВТОРОЙ@@")
EOS = "<|endoftext|>"


def _read_json(path: str):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def _read_merges(path: str) -> List[List[str]]:
    merges = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\r\n")
            if not line or line.startswith("#version"):
                continue
            parts = line.split(" ")
            if len(parts) != 2:
                raise ValueError(f"{path}: bad merge line {line!r}")
            merges.append(parts)
    return merges


def _token_content(v) -> Optional[str]:
    """special_tokens_map / tokenizer_config values are strings or {"content": ...} dicts."""
    if isinstance(v, str):
        return v
    if isinstance(v, dict) and isinstance(v.get("content"), str):
        return v["content"]
    return None


def _special_names(hf_dir: str) -> List[str]:
    names = []
    for fname in ("special_tokens_map.json", "tokenizer_config.json"):
        p = os.path.join(hf_dir, fname)
        if not os.path.exists(p):
            continue
        d = _read_json(p)
        for key in ("bos_token", "eos_token", "unk_token", "pad_token", "sep_token", "cls_token", "mask_token"):
            c = _token_content(d.get(key))
            if c:
                names.append(c)
        for v in d.get("additional_special_tokens") or []:
            c = _token_content(v)
            if c:
                names.append(c)
        for v in (d.get("added_tokens_decoder") or {}).values():
            c = _token_content(v)
            if c:
                names.append(c)
    return names


def _added_tokens(hf_dir: str, vocab: Dict[str, int]) -> Dict[str, int]:
    """All added/special tokens with their ids; new ones (not in vocab) are added to vocab too."""
    added: Dict[str, int] = {}
    p = os.path.join(hf_dir, "added_tokens.json")
    if os.path.exists(p):
        added.update({str(k): int(v) for k, v in _read_json(p).items()})
    p = os.path.join(hf_dir, "tokenizer_config.json")
    if os.path.exists(p):
        for i, v in (_read_json(p).get("added_tokens_decoder") or {}).items():
            c = _token_content(v)
            if c:
                added[c] = int(i)
    for name in list(_special_names(hf_dir)) + [EOS, *DIALOGUE_TAGS]:
        if name not in added and name in vocab:
            added[name] = vocab[name]
    for name, i in added.items():
        if vocab.get(name, i) != i:
            raise ValueError(f"token {name!r} has id {i} in added tokens but {vocab[name]} in vocab.json")
        vocab[name] = i
    return added


def build_tokenizer_json(hf_dir: str) -> Dict:
    """tokenizer.json (as a dict) from vocab.json + merges.txt and the optional token files."""
    vocab = {str(k): int(v) for k, v in _read_json(os.path.join(hf_dir, "vocab.json")).items()}
    merges = _read_merges(os.path.join(hf_dir, "merges.txt"))
    added = _added_tokens(hf_dir, vocab)
    byte_level = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [
            {"id": i, "content": c, "single_word": False, "lstrip": False, "rstrip": False,
             "normalized": False, "special": True}
            for c, i in sorted(added.items(), key=lambda kv: kv[1])
        ],
        "normalizer": None,
        "pre_tokenizer": byte_level,
        "post_processor": {**byte_level, "add_prefix_space": True, "trim_offsets": False},
        "decoder": {**byte_level, "add_prefix_space": True},
        "model": {
            "type": "BPE",
            "dropout": None,
            "unk_token": None,
            "continuing_subword_prefix": None,
            "end_of_word_suffix": None,
            "fuse_unk": False,
            "byte_fallback": False,
            "ignore_merges": False,
            "vocab": dict(sorted(vocab.items(), key=lambda kv: kv[1])),
            "merges": merges,
        },
    }


def write_tokenizer_json(hf_dir: str, out_path: str) -> str:
    """Copies hf_dir/tokenizer.json to out_path, or builds it; returns "copied" or "built"."""
    src = os.path.join(hf_dir, "tokenizer.json")
    tmp = out_path + ".tmp"
    if os.path.exists(src):
        shutil.copyfile(src, tmp)
        how = "copied"
    elif os.path.exists(os.path.join(hf_dir, "vocab.json")) and os.path.exists(os.path.join(hf_dir, "merges.txt")):
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(build_tokenizer_json(hf_dir), f, ensure_ascii=False)
        how = "built"
    else:
        raise FileNotFoundError(f"{hf_dir}: no tokenizer.json and no vocab.json + merges.txt")
    os.replace(tmp, out_path)
    return how


def token_ids(tokenizer: Dict, names) -> Dict[str, int]:
    """Ids of the given token strings that the tokenizer has (added tokens first, then vocab)."""
    found = {}
    added = {t["content"]: t["id"] for t in tokenizer.get("added_tokens") or []}
    vocab = (tokenizer.get("model") or {}).get("vocab") or {}
    for n in names:
        if n in added:
            found[n] = int(added[n])
        elif n in vocab:
            found[n] = int(vocab[n])
    return found


def vocab_size(tokenizer: Dict) -> int:
    """One more than the largest id the tokenizer can produce."""
    ids = list(((tokenizer.get("model") or {}).get("vocab") or {}).values())
    ids += [t["id"] for t in tokenizer.get("added_tokens") or []]
    return max(ids) + 1 if ids else 0
