"""Reading and writing Hugging Face GPT-2 weights: safetensors, pytorch_model.bin, config.json."""

import json
import os
import struct

import pytest
import torch

import gpt2
from conftest import TINY, make_hf_dir


def logits_of(model, ids=(5, 6, 7, 8)):
    with torch.no_grad():
        return model.float()(torch.tensor([list(ids)]))[0]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16, torch.int64, torch.bool])
def test_safetensors_round_trip(tmp_path, dtype):
    g = torch.Generator().manual_seed(0)
    t = (torch.randn(3, 5, generator=g) * 10).to(dtype)
    path = str(tmp_path / "t.safetensors")
    gpt2.write_safetensors(path, {"a": t, "empty": torch.zeros(0, 4, dtype=dtype)}, {"format": "pt"})
    got = gpt2.read_safetensors(path)
    assert set(got) == {"a", "empty"}
    assert got["a"].dtype == dtype and torch.equal(got["a"], t)
    assert got["empty"].shape == (0, 4)


def test_safetensors_layout_is_the_reference_one(tmp_path):
    """8-byte little-endian header length, JSON header padded to 8 bytes, then raw little-endian data."""
    path = str(tmp_path / "t.safetensors")
    gpt2.write_safetensors(path, {"x": torch.tensor([1.0, -2.0], dtype=torch.float16)})
    data = open(path, "rb").read()
    (n,) = struct.unpack("<Q", data[:8])
    assert n % 8 == 0
    header = json.loads(data[8 : 8 + n])
    assert header["x"] == {"dtype": "F16", "shape": [2], "data_offsets": [0, 4]}
    assert data[8 + n :] == struct.pack("<2e", 1.0, -2.0)


@pytest.mark.parametrize(
    "content, message",
    [
        pytest.param(b"\x01", "too short", id="short"),
        pytest.param(struct.pack("<Q", 1000) + b"{}", "exceeds file size", id="header-too-long"),
        pytest.param(struct.pack("<Q", 2) + b"{x", "bad safetensors header", id="bad-json"),
        pytest.param(struct.pack("<Q", 56) + b'{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,8]}}  ' + bytes(8), "do not fit",
                     id="offsets-wrong"),
        pytest.param(struct.pack("<Q", 56) + b'{"a":{"dtype":"Q99","shape":[2],"data_offsets":[0,8]}}  ' + bytes(8),
                     "unsupported dtype",
                     id="unknown-dtype"),
    ],
)
def test_safetensors_corrupt(tmp_path, content, message):
    path = str(tmp_path / "bad.safetensors")
    with open(path, "wb") as f:
        f.write(content)
    with pytest.raises(ValueError, match=message):
        gpt2.read_safetensors(path)


@pytest.mark.parametrize("dtype", [None, torch.float16, torch.bfloat16])
def test_save_hf_load_hf_round_trip(tmp_path, tiny_model, dtype):
    gpt2.save_hf(tiny_model, str(tmp_path), dtype=dtype)
    assert sorted(os.listdir(tmp_path)) == ["config.json", "model.safetensors"]
    st = gpt2.read_safetensors(str(tmp_path / "model.safetensors"))
    # HF names and Conv1D layout [in, out]; tied head saved once, as wte.
    assert st["transformer.h.0.attn.c_attn.weight"].shape == (16, 48)
    assert st["transformer.h.1.mlp.c_fc.weight"].shape == (16, 64)
    assert "lm_head.weight" not in st
    cfg = json.load(open(tmp_path / "config.json"))
    assert cfg["model_type"] == "gpt2" and cfg["n_embd"] == 16 and cfg["tie_word_embeddings"] is True
    back = gpt2.load_hf(str(tmp_path))
    tol = 0 if dtype is None else 0.05
    assert (logits_of(back) - logits_of(tiny_model)).abs().max().item() <= tol


def test_load_pytorch_model_bin_with_unprefixed_keys_and_buffers(tmp_path, tiny_model):
    """OpenAI's original gpt2 files: no `transformer.` prefix, causal-mask buffers, a tied lm_head copy."""
    gpt2.save_hf(tiny_model, str(tmp_path))
    sd = gpt2.read_safetensors(str(tmp_path / "model.safetensors"))
    sd = {k.replace("transformer.", ""): v for k, v in sd.items()}
    sd["h.0.attn.bias"] = torch.ones(1, 1, 32, 32)
    sd["h.0.attn.masked_bias"] = torch.tensor(-1e4)
    sd["lm_head.weight"] = sd["wte.weight"].clone()
    os.remove(tmp_path / "model.safetensors")
    torch.save(sd, tmp_path / "pytorch_model.bin")
    back = gpt2.load_hf(str(tmp_path))
    assert back.lm_head is None
    assert torch.equal(logits_of(back), logits_of(tiny_model))


def test_untied_lm_head_is_used(tmp_path, tiny_model):
    gpt2.save_hf(tiny_model, str(tmp_path))
    sd = gpt2.read_safetensors(str(tmp_path / "model.safetensors"))
    sd["lm_head.weight"] = torch.randn(300, 16, generator=torch.Generator().manual_seed(3))
    gpt2.write_safetensors(str(tmp_path / "model.safetensors"), sd)
    back = gpt2.load_hf(str(tmp_path))
    assert back.lm_head is not None
    assert not torch.allclose(logits_of(back), logits_of(tiny_model))
    gpt2.save_hf(back, str(tmp_path / "again"))
    again = gpt2.load_hf(str(tmp_path / "again"))
    assert torch.equal(logits_of(again), logits_of(back))


@pytest.mark.parametrize(
    "change, message",
    [
        pytest.param({"model_type": "llama"}, "not gpt2", id="not-gpt2"),
        pytest.param({"scale_attn_by_inverse_layer_idx": True}, "not supported", id="inverse-layer-scale"),
        pytest.param({"activation_function": "swish"}, "not supported", id="activation"),
        pytest.param({"n_head": 3}, "divisible", id="heads"),
        pytest.param({"n_layer": 3}, "do not match", id="more-layers-than-weights"),
    ],
)
def test_load_hf_rejects_mismatched_config(tmp_path, change, message):
    make_hf_dir(str(tmp_path))
    cfg = json.load(open(tmp_path / "config.json"))
    cfg.update(change)
    json.dump(cfg, open(tmp_path / "config.json", "w"))
    with pytest.raises(ValueError, match=message):
        gpt2.load_hf(str(tmp_path))


def test_load_hf_without_weights(tmp_path):
    make_hf_dir(str(tmp_path))
    os.remove(tmp_path / "model.safetensors")
    with pytest.raises(FileNotFoundError, match="no model.safetensors or pytorch_model.bin"):
        gpt2.load_hf(str(tmp_path))


def test_random_gpt2_is_seeded_and_hf_style():
    cfg = gpt2.GPT2Config(vocab_size=300, **TINY)
    a, b, c = gpt2.random_gpt2(cfg, 1), gpt2.random_gpt2(cfg, 1), gpt2.random_gpt2(cfg, 2)
    assert torch.equal(a.transformer.wte.weight, b.transformer.wte.weight)
    assert not torch.equal(a.transformer.wte.weight, c.transformer.wte.weight)
    assert abs(a.transformer.wte.weight.std().item() - 0.02) < 0.002
    assert torch.equal(a.transformer.ln_f.weight, torch.ones(16))
    assert torch.equal(a.transformer.h[0].attn.c_attn.bias, torch.zeros(48))


def test_config_from_shared_json(shared_model):
    cfg = gpt2.GPT2Config.from_json(os.path.join(shared_model("nano-ru"), "config.json"))
    assert (cfg.n_layer, cfg.n_head, cfg.n_embd, cfg.vocab_size, cfg.n_positions) == (8, 6, 384, 16000, 512)
    assert cfg.layer_norm_epsilon == 1e-5 and cfg.head_dim == 64
