"""gpt2.py against Hugging Face transformers itself (runs only where transformers is installed)."""

import pytest
import torch

import gpt2
from conftest import TINY

transformers = pytest.importorskip("transformers", reason="transformers is not installed here")

IDS = torch.tensor([[3, 14, 15, 92, 65, 35, 89, 79]])


def hf_logits(model):
    with torch.no_grad():
        return model(IDS).logits[0]


def our_logits(model):
    with torch.no_grad():
        return model(IDS)[0]


def test_save_hf_is_read_by_transformers(tmp_path):
    ours = gpt2.random_gpt2(gpt2.GPT2Config(vocab_size=300, **TINY), seed=4)
    gpt2.save_hf(ours, str(tmp_path))
    theirs = transformers.GPT2LMHeadModel.from_pretrained(str(tmp_path)).eval()
    assert (hf_logits(theirs) - our_logits(ours)).abs().max().item() < 1e-4


@pytest.mark.parametrize("safe", [True, False], ids=["safetensors", "pytorch_model.bin"])
def test_load_hf_reads_transformers_files(tmp_path, safe):
    torch.manual_seed(0)
    cfg = transformers.GPT2Config(vocab_size=300, n_layer=2, n_head=2, n_embd=16, n_positions=32)
    theirs = transformers.GPT2LMHeadModel(cfg).eval()
    theirs.save_pretrained(str(tmp_path), safe_serialization=safe)
    ours = gpt2.load_hf(str(tmp_path))
    assert (hf_logits(theirs) - our_logits(ours)).abs().max().item() < 1e-4
