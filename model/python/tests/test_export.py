"""export.py: the TorchScript step, its checks, tokenizer.json and dialogbot.json."""

import json
import os

import pytest
import torch

import export
import gpt2
from conftest import make_hf_dir, write_tokenizer_json
from test_golden import STOP_IDS, load_golden, until_stop

# Shapes the export itself does not check at (it checks B{1,3} x T{1,5} x S{0,7}).
OTHER_SHAPES = [(2, 4, 3), (4, 2, 9), (1, 7, 1), (5, 1, 12)]


def run_export(argv, logs=None):
    return export.export(export.parse_args(argv), log=(logs.append if logs is not None else lambda s: None))


@pytest.fixture(scope="module")
def hf_dir(tmp_path_factory):
    d = str(tmp_path_factory.mktemp("hf"))
    make_hf_dir(d)
    return d


@pytest.mark.parametrize(
    "flags, dtype",
    [
        pytest.param([], torch.float32, id="float32"),
        pytest.param(["--dtype", "bfloat16"], torch.bfloat16, id="bfloat16"),
        pytest.param(["--quantize", "int8"], torch.float32, id="int8"),
    ],
)
def test_exported_trace_matches_eager_after_reload(tmp_path, hf_dir, flags, dtype):
    logs = []
    meta = run_export(["--hf", hf_dir, "--out", str(tmp_path)] + flags, logs)
    assert sorted(os.listdir(tmp_path)) == ["dialogbot.json", "model.pt", "tokenizer.json"]
    assert any("max abs diff" in line for line in logs)
    eager = gpt2.load_hf(hf_dir)
    if "--quantize" in flags:
        eager = export.quantize_int8(eager)
        assert meta["quantize"] == "int8" and meta["cpu_only"] is True
    eager = eager.to(dtype)
    loaded = torch.jit.load(str(tmp_path / "model.pt"))
    with torch.no_grad():
        for B, T, S in OTHER_SHAPES:
            args = export.step_inputs(eager.config, B, T, S, dtype, seed=9)
            got, want = loaded(*args), eager.step(*args)
            assert got[0].dtype == torch.float32 and got[1].dtype == dtype
            assert got[1].shape == (2, 2, B, 2, T, 8)
            assert export.max_diff(got, want) < 1e-4, f"B={B} T={T} S={S}"


def test_quantize_both_writes_the_int8_copy_beside_the_float_one(tmp_path, hf_dir):
    logs = []
    meta = run_export(["--hf", hf_dir, "--out", str(tmp_path), "--quantize", "both"], logs)
    assert sorted(os.listdir(tmp_path)) == ["dialogbot.json", "model.int8.pt", "model.pt", "tokenizer.json"]
    assert meta["quantize"] == "none" and meta["cpu_only"] is False, "model.pt is the float copy"
    copy = meta["int8"]
    assert copy["file"] == "model.int8.pt" and copy["rows_checked"] > 0 and 0 <= copy["top1_agreement"] <= 1
    assert any("top-1" in line for line in logs)
    with open(tmp_path / "dialogbot.json", encoding="utf-8") as f:
        assert json.load(f)["int8"] == copy
    args = export.step_inputs(gpt2.load_hf(hf_dir).config, 2, 3, 4, seed=5)
    with torch.no_grad():
        want_float = gpt2.load_hf(hf_dir).step(*args)
        want_int8 = export.quantize_int8(gpt2.load_hf(hf_dir)).step(*args)
        got_float = torch.jit.load(str(tmp_path / "model.pt"))(*args)
        got_int8 = torch.jit.load(str(tmp_path / "model.int8.pt"))(*args)
    assert export.max_diff(got_float, want_float) < 1e-4
    assert export.max_diff(got_int8, want_int8) < 1e-4
    assert export.max_diff(got_int8, want_float) > 0, "the int8 copy is quantized"


def test_float16_export_stores_half_weights(tmp_path, hf_dir):
    meta = run_export(["--hf", hf_dir, "--out", str(tmp_path), "--dtype", "float16"])
    assert meta["dtype"] == "float16"
    loaded = torch.jit.load(str(tmp_path / "model.pt"))
    assert {p.dtype for p in loaded.parameters()} == {torch.float16}


def test_metadata(tmp_path, hf_dir):
    meta = run_export(["--hf", hf_dir, "--out", str(tmp_path)])
    assert json.load(open(tmp_path / "dialogbot.json", encoding="utf-8")) == meta
    want = {"format_version": 1, "architecture": "gpt2", "n_layer": 2, "n_head": 2, "n_embd": 16, "head_dim": 8,
            "vocab_size": 300, "n_positions": 32, "layer_norm_epsilon": 1e-5, "dtype": "float32", "quantize": "none",
            "cpu_only": False, "prompt_format": "rudialogpt", "eos_token_id": 0,
            "special_tokens": {"<|endoftext|>": 0, "@@ПЕРВЫЙ@@": 1, "@@ВТОРОЙ@@": 2},
            "torch_version": torch.__version__, "source": os.path.abspath(hf_dir)}
    assert {k: meta[k] for k in want} == want


@pytest.mark.parametrize(
    "tags, requested, want",
    [
        pytest.param(True, "auto", "rudialogpt", id="auto-with-tags"),
        pytest.param(False, "auto", "dialogpt", id="auto-without-tags"),
        pytest.param(True, "dialogpt", "dialogpt", id="forced-dialogpt"),
        pytest.param(False, "rudialogpt", "needs @@ПЕРВЫЙ@@", id="forced-rudialogpt-without-tags"),
    ],
)
def test_prompt_format(tmp_path, tags, requested, want):
    src = str(tmp_path / "hf")
    make_hf_dir(src, tags=tags)
    argv = ["--hf", src, "--out", str(tmp_path / "out"), "--prompt-format", requested]
    if want.startswith("needs"):
        with pytest.raises(export.ExportError, match=want):
            run_export(argv)
        return
    meta = run_export(argv)
    assert meta["prompt_format"] == want
    assert set(meta["special_tokens"]) == ({"<|endoftext|>", "@@ПЕРВЫЙ@@", "@@ВТОРОЙ@@"} if tags else {"<|endoftext|>"})


def test_tokenizer_larger_than_model_vocab(tmp_path):
    src = str(tmp_path / "hf")
    make_hf_dir(src)
    write_tokenizer_json(os.path.join(src, "tokenizer.json"), 300)
    tok = json.load(open(os.path.join(src, "tokenizer.json")))
    tok["model"]["vocab"]["zzz"] = 400
    json.dump(tok, open(os.path.join(src, "tokenizer.json"), "w"))
    with pytest.raises(export.ExportError, match="vocab_size is 300"):
        run_export(["--hf", src, "--out", str(tmp_path / "out")])


def test_random_shape(tmp_path):
    tok = str(tmp_path / "tok.json")
    write_tokenizer_json(tok, 16000)
    meta = run_export(["--random-shape", "tiny", "--tokenizer", tok, "--out", str(tmp_path / "out")])
    assert meta["source"] == "random:tiny:seed0"
    assert (meta["n_layer"], meta["n_embd"], meta["vocab_size"]) == (2, 32, 16000)
    assert export.SHAPES["gpt2-small"] == dict(n_layer=12, n_head=12, n_embd=768, vocab_size=50264, n_positions=2048)


class ArangePositions(gpt2.GPT2):
    """Wrong on purpose: makes positions inside the step, which a trace bakes in as a CPU constant."""

    def step(self, input_ids, position_ids, attn_mask, past, last_index):
        pos = torch.arange(input_ids.size(1)).unsqueeze(0) + past.size(4)
        return super().step(input_ids, pos, attn_mask, past, last_index)


class BakedLastIndex(gpt2.GPT2):
    """Wrong on purpose: turns last_index into a Python value, which a trace freezes."""

    def step(self, input_ids, position_ids, attn_mask, past, last_index):
        last = torch.full_like(last_index, int(last_index[0]))
        return super().step(input_ids, position_ids, attn_mask, past, last)


@pytest.mark.parametrize(
    "cls, message",
    [
        pytest.param(ArangePositions, "bakes in tensors: aten::arange", id="arange"),
        pytest.param(BakedLastIndex, "trace (differs from eager|fails) at", id="baked-python-value"),
    ],
)
@pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning")
def test_bad_traces_are_refused(tiny_model, cls, message):
    bad = cls(tiny_model.config)
    bad.load_state_dict(tiny_model.state_dict())
    bad.eval()
    with pytest.raises(export.ExportError, match=message):
        traced = export.trace_step(bad, bad.config)
        export.check(traced, bad, bad.config, torch.float32, "cpu", 1e-4, "test", lambda s: None)


@pytest.mark.parametrize(
    "argv, code",
    [
        pytest.param(["--hf", "/nonexistent", "--out", "OUT"], 1, id="missing-dir"),
        pytest.param(["--hf", "HF", "--out", "OUT", "--dtype", "float16", "--quantize", "int8"], 1, id="int8-half"),
        pytest.param(["--hf", "HF", "--out", "OUT", "--dtype", "bfloat16", "--quantize", "both"], 1, id="both-half"),
    ],
)
def test_cli_errors_are_one_line(tmp_path, hf_dir, capsys, argv, code):
    argv = [a.replace("OUT", str(tmp_path)).replace("HF", hf_dir) if a in ("OUT", "HF") else a for a in argv]
    assert export.main(argv) == code
    err = capsys.readouterr().err
    assert err.startswith("export: error: ") and err.count("\n") == 1, err


def test_cli_usage_errors(capsys):
    for argv in (["--out", "x"], ["--random-shape", "tiny", "--out", "x"]):
        with pytest.raises(SystemExit) as e:
            export.main(argv)
        assert e.value.code == 2


def trace_greedy(traced, cfg, prompt, n, stop=()):
    """Greedy decoding through the exported file, as the bridge does it."""
    ids, pos, mask, last = gpt2.causal_step_inputs([len(prompt)], ids=[prompt])
    past = gpt2.empty_past(cfg, 1)
    out, first = [], None
    with torch.no_grad():
        for _ in range(n):
            logits, present = traced(ids, pos, mask, past, last)
            first = logits[0] if first is None else first
            past = torch.cat([past, present], dim=4)
            out.append(int(logits[0].argmax()))
            if out[-1] in stop:
                break
            S = past.size(4)
            ids, pos = torch.tensor([[out[-1]]]), torch.tensor([[S]])
            mask, last = torch.ones(1, 1, 1, S + 1, dtype=torch.bool), torch.zeros(1, dtype=torch.long)
    return first, out


def test_exported_tiny_gpt2_matches_golden(shared_model, tmp_path):
    d = shared_model("tiny-gpt2")
    run_export(["--hf", d, "--out", str(tmp_path)])
    traced, cfg = torch.jit.load(str(tmp_path / "model.pt")), gpt2.GPT2Config.from_json(os.path.join(d, "config.json"))
    for c in load_golden(d):
        first, out = trace_greedy(traced, cfg, c["ids"], 16)
        assert (first - torch.tensor(c["last_logits"])).abs().max().item() < 1e-4
        assert out == c["greedy16"]


def test_exported_nano_ru_matches_golden(shared_model, tmp_path):
    d = shared_model("nano-ru")
    meta = run_export(["--hf", d, "--out", str(tmp_path)])
    assert meta["special_tokens"] == {"<|endoftext|>": 0, "@@ПЕРВЫЙ@@": 1, "@@ВТОРОЙ@@": 2}
    assert meta["n_positions"] == 512 and meta["prompt_format"] == "rudialogpt"
    traced, cfg = torch.jit.load(str(tmp_path / "model.pt")), gpt2.GPT2Config.from_json(os.path.join(d, "config.json"))
    for c in load_golden(d):
        first, out = trace_greedy(traced, cfg, c["prompt_ids"], 24, STOP_IDS)
        top = first.topk(10)
        assert top.indices.tolist() == c["last_logits_top10_ids"]
        assert (top.values - torch.tensor(c["last_logits_top10"])).abs().max().item() < 1e-3
        assert out == until_stop(c["greedy_ids"])
