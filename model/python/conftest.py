"""Shared pytest fixtures for model/python: where ../shared is, small random models, tokenizers."""

import json
import os
import sys

import pytest
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import gpt2  # noqa: E402
import report  # noqa: E402

REPO_ROOT = os.path.dirname(os.path.dirname(HERE))


def shared_path() -> str:
    return os.environ.get("DIALOGBOT_SHARED") or os.path.join(REPO_ROOT, "..", "shared")


@pytest.fixture(scope="session")
def shared():
    """The shared data folder; tests that need it skip when it is absent."""
    p = shared_path()
    if not os.path.isdir(os.path.join(p, "models")):
        pytest.skip(f"shared data not found at {p} (set DIALOGBOT_SHARED to the shared folder)")
    return p


@pytest.fixture(scope="session")
def shared_model(shared):
    """shared_model(name) -> directory of ../shared/models/name (skips when missing)."""

    def get(name):
        d = os.path.join(shared, "models", name)
        if not os.path.isfile(os.path.join(d, "golden.json")):
            pytest.skip(f"{d}/golden.json not found")
        return d

    return get


TINY = dict(n_layer=2, n_head=2, n_embd=16, n_positions=32)


def byte_chars():
    """GPT-2's byte -> printable character table (the base alphabet of byte-level BPE), as report.py has it."""
    return report.byte_chars()


MERGES = [["Ġ", "Ð"], ["Ð", "¿"], ["h", "i"], ["Ġ", "hi"]]


def write_bpe_files(d, tags=True):
    """A hand-made byte-level BPE in the vocab.json + merges.txt form of older hub repos.

    Ids: <|endoftext|>=0, then (with tags) the two speaker tags, then 256 bytes and the merges.
    The tags appear only in added_tokens.json, the eos only in vocab.json and special_tokens_map.json,
    so the builder must combine all three sources.
    """
    specials = ["<|endoftext|>"]
    vocab = {"<|endoftext|>": 0}
    for c in byte_chars() + ["".join(m) for m in MERGES]:
        vocab[c] = len(vocab) + (2 if tags else 0)
    with open(os.path.join(d, "vocab.json"), "w", encoding="utf-8") as f:
        json.dump(vocab, f, ensure_ascii=False)
    with open(os.path.join(d, "merges.txt"), "w", encoding="utf-8") as f:
        f.write("#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in MERGES))
    with open(os.path.join(d, "special_tokens_map.json"), "w", encoding="utf-8") as f:
        json.dump({"eos_token": "<|endoftext|>", "bos_token": {"content": "<|endoftext|>"}}, f)
    if tags:
        with open(os.path.join(d, "added_tokens.json"), "w", encoding="utf-8") as f:
            json.dump({"@@ПЕРВЫЙ@@": 1, "@@ВТОРОЙ@@": 2}, f, ensure_ascii=False)
    return max(vocab.values()) + 1


def write_tokenizer_json(path, vocab_size, tags=True):
    """A minimal tokenizer.json with the given special tokens (for models served with tokenizer.json)."""
    names = ["<|endoftext|>"] + (["@@ПЕРВЫЙ@@", "@@ВТОРОЙ@@"] if tags else [])
    added = [{"id": i, "content": n, "special": True} for i, n in enumerate(names)]
    vocab = {n: i for i, n in enumerate(names)}
    for c in byte_chars():
        vocab[c] = len(vocab)
    assert len(vocab) <= vocab_size
    tok = {"version": "1.0", "added_tokens": added, "model": {"type": "BPE", "vocab": vocab, "merges": []}}
    with open(path, "w", encoding="utf-8") as f:
        json.dump(tok, f, ensure_ascii=False)


def make_hf_dir(d, vocab_size=300, seed=0, tokenizer="json", tags=True, weights="safetensors"):
    """A small random GPT-2 in HF layout: config.json + weights + tokenizer files."""
    os.makedirs(d, exist_ok=True)
    model = gpt2.random_gpt2(gpt2.GPT2Config(vocab_size=vocab_size, **TINY), seed=seed)
    gpt2.save_hf(model, d)
    if weights == "bin":
        sd = gpt2.read_safetensors(os.path.join(d, "model.safetensors"))
        torch.save(sd, os.path.join(d, "pytorch_model.bin"))
        os.remove(os.path.join(d, "model.safetensors"))
    if tokenizer == "json":
        write_tokenizer_json(os.path.join(d, "tokenizer.json"), vocab_size, tags)
    else:
        assert write_bpe_files(d, tags) <= vocab_size
    return model


@pytest.fixture
def tiny_model():
    return gpt2.random_gpt2(gpt2.GPT2Config(vocab_size=300, **TINY), seed=0)
