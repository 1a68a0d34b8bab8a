"""The training report: the decoder, the turns of a prompt, the SVG and the page."""

import json
import math
import os
import xml.etree.ElementTree as ET

import numpy as np
import pytest

import conftest
import dataset_io
import gpt2
import prompt_format as pf
import report

SVG = "{http://www.w3.org/2000/svg}"


@pytest.mark.parametrize("name, key", [("gpt2-tokenizer.json", "gpt2"), ("ru-tokenizer.json", "ru")])
def test_decoder_matches_hf_tokenizers_on_the_golden_cases(shared, name, key):
    dec = report.Decoder(os.path.join(shared, "tokenizers", name))
    with open(os.path.join(shared, "tokenizers", "tokenizer-cases.json"), encoding="utf-8") as f:
        cases = json.load(f)["cases"]
    checked = 0
    for c in cases:
        want = c.get(f"{key}_decoded")
        if want is None or "\ufffd" in want:
            continue
        assert dec.decode(c[key]) == want, c["text"]
        checked += 1
    assert checked > 100


def test_decoder_keeps_added_tokens_and_bad_utf8_visible(tmp_path):
    path = str(tmp_path / "tokenizer.json")
    conftest.write_tokenizer_json(path, 300)
    dec = report.Decoder(path)
    byte_of = {v: k for k, v in report._byte_decoder().items()}
    vocab = json.load(open(path, encoding="utf-8"))["model"]["vocab"]
    ids = [dec.special[pf.TAG_FIRST]] + [vocab[byte_of[b]] for b in "hé".encode()]
    assert dec.decode(ids) == pf.TAG_FIRST + "hé"
    assert dec.decode(ids[:-1]) == pf.TAG_FIRST + "h\ufffd", "half a character is shown, not dropped"


@pytest.mark.parametrize("fmt, prompt, turns", [
    (pf.RUDIALOGPT, "@@ПЕРВЫЙ@@ привет @@ВТОРОЙ@@ здравствуй @@ПЕРВЫЙ@@ как дела? @@ВТОРОЙ@@",
     [["user", "привет"], ["bot", "здравствуй"], ["user", "как дела?"]]),
    (pf.DIALOGPT, "hi<|endoftext|>hello<|endoftext|>how are you?<|endoftext|>",
     [["user", "hi"], ["bot", "hello"], ["user", "how are you?"]]),
    (pf.RUDIALOGPT, "@@ВТОРОЙ@@", []),
])
def test_split_turns(fmt, prompt, turns):
    assert report.split_turns(fmt, prompt) == turns


def test_sample_replies_uses_the_stored_prompt_and_stops_at_a_tag(tmp_path):
    path = str(tmp_path / "tokenizer.json")
    conftest.write_tokenizer_json(path, 300)
    dec = report.Decoder(path)
    vocab = json.load(open(path, encoding="utf-8"))["model"]["vocab"]
    byte_of = {v: k for k, v in report._byte_decoder().items()}

    def text(s):
        return [vocab[byte_of[b]] for b in s.encode()]

    first, second = dec.special[pf.TAG_FIRST], dec.special[pf.TAG_SECOND]
    prompt = [first] + text(" hi ") + [second]
    target = text(" yo ") + [first]
    split = dataset_io.Split(np.array(prompt + target, dtype=np.uint32),
                             np.array([0] * len(prompt) + [1] * len(target), dtype=np.uint8),
                             np.array([0, len(prompt) + len(target)], dtype=np.int64))
    model = gpt2.random_gpt2(gpt2.GPT2Config(vocab_size=300, **conftest.TINY), seed=1)
    got = report.sample_replies(model, model, split, [0], path, pf.RUDIALOGPT, 5)
    assert len(got) == 1
    s = got[0]
    assert s.context == [["user", "hi"]] and s.real == "yo"
    assert s.base == s.tuned, "the same model and greedy decoding give the same reply"
    want = gpt2.greedy(model, prompt, 5, [first, second, dec.special[pf.EOS]], report.MIN_NEW_TOKENS)
    assert s.base == report.strip_stops(pf.RUDIALOGPT, dec.decode(want))


def svg_of(train, valid):
    root = ET.fromstring(report.loss_svg(train, valid))
    assert root.tag == SVG + "svg"
    return root


def test_loss_svg_draws_both_curves_with_axes_and_labels():
    train = [[s, 5 - math.log(s)] for s in range(1, 51)]
    valid = [[0, 6.0], [25, 4.0], [50, 3.5]]
    root = svg_of(train, valid)
    lines = root.findall(f"{SVG}polyline")
    assert len(lines) == 2
    assert len(lines[0].get("points").split()) == 50 and len(lines[1].get("points").split()) == 3
    texts = [t.text for t in root.iter(f"{SVG}text")]
    for label in ("optimizer step", "cross-entropy (nats)", "train", "validation"):
        assert label in texts
    assert "50" in texts and "0" in texts, "x ticks cover the steps"
    ys = [float(p.split(",")[1]) for p in lines[0].get("points").split()]
    assert ys == sorted(ys), "falling loss draws downwards (SVG y grows down)"


@pytest.mark.parametrize("train, valid", [
    ([], []), ([[1, 2.0]], []), ([[1, float("nan")], [2, 3.0]], [[0, float("inf")]]), ([[1, 2.0], [2, 2.0]], []),
    ([[1, None], [2, 3.0]], [[0, None]]),
])
def test_loss_svg_survives_degenerate_histories(train, valid):
    svg_of(train, valid)


def test_write_makes_the_three_files_and_the_page_shows_the_samples(tmp_path):
    doc = {"valid_ppl_before": 1234.5, "valid_ppl_after": 27.7, "valid_ppl_best": 27.7, "steps": 30,
           "total_steps": 30, "train_tokens": 60000, "train_tokens_per_s": 1500.0, "time_s": 40.0,
           "history": {"train": [[1, 7.0], [2, 6.0]], "valid": [[0, 7.1], [2, 6.1]]},
           "samples": [{"context": [["user", "a|b"], ["bot", "c"]], "real": "r\nr", "base": "", "tuned": "t<x>"}]}
    path = report.write(str(tmp_path), doc)
    assert path == str(tmp_path / "report.json")
    with open(path) as f:
        assert json.load(f)["valid_ppl_after"] == 27.7
    md = (tmp_path / "report.md").read_text()
    assert "![loss curve](loss.svg)" in md and "1,234.50" in md and "27.70" in md
    row = [line for line in md.splitlines() if line.startswith("| user")][0]
    assert row == "| user: a\\|b<br>bot: c | r<br>r | (empty) | t&lt;x&gt; |"
    svg_of([], [])
    ET.parse(str(tmp_path / "loss.svg"))
    assert not [n for n in os.listdir(tmp_path) if n.endswith(".tmp")]


def test_report_json_has_no_nan(tmp_path):
    report.write(str(tmp_path), {"valid_ppl_after": float("nan"), "history": {"train": [[1, float("inf")]]}})
    with open(tmp_path / "report.json") as f:
        doc = json.loads(f.read(), parse_constant=lambda c: pytest.fail(f"{c} in report.json"))
    assert doc["valid_ppl_after"] is None and doc["history"]["train"] == [[1, None]]
