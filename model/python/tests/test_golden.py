"""gpt2.py against the Hugging Face transformers golden outputs in ../shared/models."""

import json
import os

import pytest
import torch

import gpt2

# ../shared/models/README.md: a reply ends at the first of these ids.
STOP_IDS = (0, 1, 2)


def load_golden(d):
    with open(os.path.join(d, "golden.json"), encoding="utf-8") as f:
        return json.load(f)["cases"]


@pytest.fixture(scope="module")
def tiny(shared_model):
    d = shared_model("tiny-gpt2")
    return gpt2.load_hf(d), load_golden(d)


@pytest.fixture(scope="module")
def nano(shared_model):
    d = shared_model("nano-ru")
    return gpt2.load_hf(d), load_golden(d)


@pytest.mark.parametrize("case", range(3))
def test_tiny_gpt2_logits(tiny, case):
    model, cases = tiny
    c = cases[case]
    with torch.no_grad():
        logits = model(torch.tensor([c["ids"]]))[0]
    last = (logits[-1] - torch.tensor(c["last_logits"])).abs().max().item()
    assert last < 1e-4, f"last-position logits differ by {last}"
    sums = (logits.sum(-1) - torch.tensor(c["logits_sum_per_position"])).abs().max().item()
    # A sum of 16,000 logits carries their float32 rounding (about 1e-5 seen), hence the wider bound.
    assert sums < 1e-3, f"per-position logit sums differ by {sums}"


@pytest.mark.parametrize("case", range(3))
def test_tiny_gpt2_greedy(tiny, case):
    model, cases = tiny
    c = cases[case]
    assert gpt2.greedy(model, c["ids"], 16) == c["greedy16"]


@pytest.mark.parametrize("case", range(5))
def test_nano_ru_top10(nano, case):
    model, cases = nano
    c = cases[case]
    with torch.no_grad():
        last = model(torch.tensor([c["prompt_ids"]]))[0, -1]
    top = last.topk(10)
    assert top.indices.tolist() == c["last_logits_top10_ids"]
    diff = (top.values - torch.tensor(c["last_logits_top10"])).abs().max().item()
    assert diff < 1e-3, f"top-10 logits differ by {diff}"


def until_stop(ids):
    for i, t in enumerate(ids):
        if t in STOP_IDS:
            return ids[: i + 1]
    return ids


@pytest.mark.parametrize("case", range(5))
def test_nano_ru_greedy(nano, case):
    model, cases = nano
    c = cases[case]
    got = gpt2.greedy(model, c["prompt_ids"], 24, stop_ids=STOP_IDS)
    assert got == until_stop(c["greedy_ids"])


@pytest.fixture(scope="module")
def nano_int8(shared_model):
    import export  # the export script's own quantization, as `export.py --quantize int8` does it

    d = shared_model("nano-ru")
    return export.quantize_int8(gpt2.load_hf(d)).eval(), load_golden(d)


def test_nano_ru_int8_stays_close(nano_int8):
    """int8 (export's weight-only int8, the CPU's smaller-weights option) must keep what the model says.

    Not exact: rounding the weights moves logits by a few hundredths, and a prompt of several tokens
    also quantizes its activations (int8.py), so a near tie later in a reply can flip. Seen on the dev
    VM (AMD EPYC, VNNI): top-1 5/5, top-10 overlap at least 9 of 10, greedy replies 5/5 (with the
    earlier per-tensor dynamic int8: 3/5). A broken quantization fails all of these.
    """
    model, cases = nano_int8
    same_reply = 0
    for c in cases:
        with torch.no_grad():
            top = model(torch.tensor([c["prompt_ids"]]))[0, -1].topk(10).indices.tolist()
        assert top[0] == c["last_logits_top10_ids"][0], "int8 changed the most likely next token"
        assert len(set(top) & set(c["last_logits_top10_ids"])) >= 8, f"int8 top-10 {top}"
        same_reply += gpt2.greedy(model, c["prompt_ids"], 24, stop_ids=STOP_IDS) == until_stop(c["greedy_ids"])
    assert same_reply >= 4, f"int8 kept only {same_reply} of {len(cases)} greedy replies"
