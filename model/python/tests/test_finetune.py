"""Tests of finetune.py and dataset_io.py on a tiny random GPT-2 and a tiny
synthetic dataset written here in the binary format (no shared files needed)."""

import json
import math
import os
import sys

import numpy as np
import pytest
import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import dataset_io  # noqa: E402
import batches  # noqa: E402
import finetune  # noqa: E402
import gpt2  # noqa: E402

VOCAB = 40
FIRST, SECOND, EOS = 1, 2, 0


def tiny_model_dir(root) -> str:
    """A random 2-layer GPT-2 saved in HF layout, with a stand-in tokenizer.json."""
    path = os.path.join(str(root), "model")
    cfg = gpt2.GPT2Config(n_layer=2, n_head=2, n_embd=32, vocab_size=VOCAB, n_positions=48, eos_token_id=EOS)
    gpt2.save_hf(gpt2.random_gpt2(cfg, seed=7), path)
    with open(os.path.join(path, "tokenizer.json"), "w") as f:
        json.dump({"model": {"type": "BPE", "vocab": {}}}, f)
    return path


def example(rng: np.random.Generator):
    """@@ПЕРВЫЙ@@ w... @@ВТОРОЙ@@ -> reply = the words reversed, then the stop tag.
    Learnable from the prompt, so a few steps must lower the loss."""
    words = list(rng.integers(3, VOCAB, size=int(rng.integers(2, 8))))
    prompt = [FIRST] + words + [SECOND]
    target = words[::-1] + [FIRST]
    return prompt + target, [0] * len(prompt) + [1] * len(target)


def tiny_dataset_dir(root, n_train=96, n_valid=24, seed=3, **extra) -> str:
    path = os.path.join(str(root), "data")
    rng = np.random.default_rng(seed)
    train = [example(rng) for _ in range(n_train)]
    valid = [example(rng) for _ in range(n_valid)]
    dataset_io.write_dataset(path, train, valid, vocab_size=VOCAB, context_length=48, extra=extra)
    return path


def args_for(tmp_path, model, data, *extra):
    return finetune.parse_args(["--model", model, "--data", data, "--out", os.path.join(str(tmp_path), "out"),
                                "--device", "cpu", "--batch-tokens", "256", "--seed", "5", *extra])


def quiet_run(args, **kw):
    lines = []
    return finetune.run(args, log=lines.append, **kw), lines


# ----------------------------------------------------------------------------- loss


def test_loss_predicts_token_j_from_tokens_before_j():
    ids = torch.tensor([[5, 6, 7, 8]])
    mask = torch.tensor([[False, False, True, True]])
    logits = torch.full((1, 4, VOCAB), -30.0)
    for j in range(1, 4):  # logits at j-1 point at ids[j]: a perfect next-token predictor
        logits[0, j - 1, ids[0, j]] = 30.0
    loss, n = finetune.masked_loss_sum(logits, ids, mask)
    assert n == 2
    assert loss.item() < 1e-6
    shifted = torch.roll(logits, 1, dims=1)  # off by one: must be penalised
    assert finetune.masked_loss_sum(shifted, ids, mask)[0].item() > 10


@pytest.mark.parametrize("change, changes_loss", [
    ("unmasked labels", False),
    ("first token (never a label)", False),
    ("a masked label", True),
])
def test_loss_counts_only_masked_targets(change, changes_loss):
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 6, VOCAB, generator=g)
    ids = torch.randint(0, VOCAB, (2, 6), generator=g)
    mask = torch.tensor([[0, 0, 0, 1, 1, 0], [1, 0, 1, 1, 0, 0]], dtype=torch.bool)
    before, _ = finetune.masked_loss_sum(logits, ids, mask)
    edited = ids.clone()
    if change == "unmasked labels":
        edited[~mask] = (edited[~mask] + 1) % VOCAB
    elif change == "first token (never a label)":
        edited[:, 0] = (edited[:, 0] + 1) % VOCAB
    else:
        edited[0, 4] = (edited[0, 4] + 1) % VOCAB
    after, _ = finetune.masked_loss_sum(logits, edited, mask)
    assert (not torch.equal(before, after)) == changes_loss


def reference_loss(model, split, i):
    """The old path on one example alone: logits at every position, then the targets."""
    ids, mask = split.example(i)
    ids = torch.tensor(ids.astype(np.int64)).unsqueeze(0)
    return finetune.masked_loss_sum(model(ids), ids, torch.tensor(mask.astype(bool)).unsqueeze(0))[0]


@pytest.mark.parametrize("layout", batches.LAYOUTS)
def test_batch_loss_and_gradient_equal_the_examples_alone(tmp_path, layout):
    """Padding never counts and packed examples never see each other: the batch's
    loss and gradient are the sums of each example's, computed alone the old way."""
    model = gpt2.load_hf(tiny_model_dir(tmp_path))  # eval(): no dropout
    rng = np.random.default_rng(1)
    short = ([FIRST, 5, SECOND, 5, FIRST], [0, 0, 0, 1, 1])
    split = split_of([example(rng) for _ in range(3)] + [short, short])
    alone = sum(reference_loss(model, split, i) for i in range(5))
    want = torch.autograd.grad(alone, list(model.parameters()))
    _, collate = batches.batcher(layout)
    for pad in (0, 17, VOCAB - 1):
        b = collate(split, np.arange(5), pad, 48)
        assert b.tokens == len(split.tokens) and b.targets == split.target_tokens()
        if layout == "pack":
            assert b.ids.shape[0] < 5, "short examples must share rows"
        loss = finetune.TargetLoss(model)(b.ids, b.positions, b.segments, b.src, b.labels)
        assert loss.item() == pytest.approx(alone.item(), rel=1e-5), f"pad id {pad}"
        got = torch.autograd.grad(loss, list(model.parameters()))
        for g, w in zip(got, want):
            assert torch.allclose(g, w, rtol=1e-4, atol=1e-6)


def test_full_logits_path_equals_the_selected_rows(tmp_path):
    model = gpt2.load_hf(tiny_model_dir(tmp_path))
    rng = np.random.default_rng(2)
    split = split_of([example(rng) for _ in range(4)])
    b = batches.collate_bucket(split, np.arange(4), 0, 48)
    args = (b.ids, b.positions, b.segments, b.src, b.labels)
    full = finetune.TargetLoss(model, full_logits=True)(*args)
    assert full.item() == pytest.approx(finetune.TargetLoss(model)(*args).item(), rel=1e-6)


def split_of(examples) -> dataset_io.Split:
    lens = [len(ids) for ids, _ in examples]
    return dataset_io.Split(np.array([t for ids, _ in examples for t in ids], dtype=np.uint32),
                            np.array([m for _, mk in examples for m in mk], dtype=np.uint8),
                            np.concatenate([[0], np.cumsum(lens)]).astype(np.int64))


@pytest.mark.parametrize("layout", batches.LAYOUTS)
def test_collate_keeps_the_last_tokens_of_a_long_example(layout):
    split = split_of([(list(range(3, 13)), [0] * 7 + [1] * 3)])
    b = batches.batcher(layout)[1](split, np.array([0]), 0, 4)
    assert b.ids.tolist() == [[9, 10, 11, 12]]
    assert b.src.tolist() == [0, 1, 2] and b.labels.tolist() == [10, 11, 12]


# ----------------------------------------------------------------------------- batching and schedule


@pytest.mark.parametrize("name, make, batch_tokens, batch_size, seed", [
    ("by tokens, sorted", batches.make_batches, 64, 0, None),
    ("by tokens, shuffled", batches.make_batches, 64, 0, 3),
    ("by count", batches.make_batches, 10_000, 4, 3),
    ("one example longer than the budget", batches.make_batches, 5, 0, None),
    ("packed, in order", batches.make_packed_batches, 64, 0, None),
    ("packed, shuffled", batches.make_packed_batches, 64, 0, 3),
    ("packed, by count", batches.make_packed_batches, 10_000, 4, 3),
    ("packed, one example longer than the budget", batches.make_packed_batches, 5, 0, None),
])
def test_make_batches(name, make, batch_tokens, batch_size, seed):
    lengths = np.random.default_rng(0).integers(2, 40, size=50)
    rng = None if seed is None else np.random.default_rng(seed)
    got = make(lengths, batch_tokens, batch_size, rng)
    assert sorted(np.concatenate(got).tolist()) == list(range(50)), "every example exactly once"
    packed = make is batches.make_packed_batches
    for b in got:
        used = lengths[b].sum() if packed else len(b) * lengths[b].max()
        assert len(b) == 1 or used <= batch_tokens
        assert batch_size == 0 or len(b) <= batch_size
    if seed is not None:
        again = make(lengths, batch_tokens, batch_size, np.random.default_rng(seed))
        assert [b.tolist() for b in got] == [b.tolist() for b in again], "same seed, same batches"


@pytest.mark.parametrize("lengths, rows", [
    ([5], 1), ([5, 5], 2), ([10, 3, 4, 2, 1], 2), ([6, 5, 4, 3, 2, 1], 4),
])
def test_pack_rows_fits_every_example_once_within_the_longest(lengths, rows):
    got = batches.pack_rows(lengths)
    assert sorted(i for r in got for i in r) == list(range(len(lengths)))
    assert all(sum(lengths[i] for i in r) <= max(lengths) for r in got)
    assert len(got) == rows


def test_lr_schedule_warms_up_then_decays_to_the_floor():
    f = finetune.lr_lambda(warmup=4, total=20, min_ratio=0.1)
    warm = [f(s) for s in range(4)]
    assert warm == sorted(warm) and warm[-1] == 1.0
    decay = [f(s) for s in range(4, 21)]
    assert decay == sorted(decay, reverse=True)
    assert decay[0] == pytest.approx(1.0) and decay[-1] == pytest.approx(0.1)


def test_weight_decay_skips_biases_and_layernorm(tmp_path):
    model = gpt2.load_hf(tiny_model_dir(tmp_path))
    decay, other = finetune.param_groups(model, 0.1)
    names = {id(p): n for n, p in model.named_parameters()}
    assert all(p.dim() >= 2 for p in decay["params"])
    no_decay = {names[id(p)] for p in other["params"]}
    assert "transformer.ln_f.weight" in no_decay and "transformer.h.0.attn.c_attn.bias" in no_decay
    assert other["weight_decay"] == 0.0 and decay["weight_decay"] == 0.1


# ----------------------------------------------------------------------------- training runs


def test_training_lowers_valid_loss_and_saves_a_loadable_best(tmp_path):
    model, data = tiny_model_dir(tmp_path), tiny_dataset_dir(tmp_path)
    args = args_for(tmp_path, model, data, "--steps", "40", "--lr", "3e-3", "--eval-every", "20")
    summary, lines = quiet_run(args)
    assert summary["steps"] == 40
    assert summary["valid_loss_after"] < summary["valid_loss_before"] - 0.3, lines
    assert summary["valid_ppl_before"] == pytest.approx(math.exp(summary["valid_loss_before"]))
    assert any(line.startswith("step 40/40 loss") and "tok/s" in line and "eta" in line for line in lines)
    best = summary["best_dir"]
    assert sorted(os.listdir(best)) == ["config.json", "model.safetensors", "tokenizer.json"]
    reloaded = gpt2.load_hf(best)
    s = finetune.setup(finetune.parse_args(["--model", best, "--data", data, "--out", "x", "--device", "cpu"]),
                       lambda _: None)._replace(model=reloaded)
    assert finetune.evaluate(s, 256, 0) == pytest.approx(summary["valid_loss_best"], rel=1e-5)
    with open(os.path.join(args.out, "summary.json")) as f:
        assert json.load(f) == summary


def test_resume_continues_from_the_saved_step_exactly(tmp_path):
    model, data = tiny_model_dir(tmp_path), tiny_dataset_dir(tmp_path)
    common = ("--steps", "8", "--eval-every", "4", "--lr", "1e-3", "--grad-accum", "2")
    straight, _ = quiet_run(args_for(tmp_path / "a", model, data, *common))
    resumed_args = args_for(tmp_path / "b", model, data, *common)
    first, _ = quiet_run(resumed_args, should_stop=lambda step: step >= 3)
    assert first["steps"] == 3 and first["stopped_early"]
    second, lines = quiet_run(resumed_args)
    assert any("resumed" in line and "at step 3" in line for line in lines), lines
    assert second["steps"] == 8 and not second["stopped_early"]
    assert second["valid_loss_before"] == first["valid_loss_before"]
    a = torch.load(os.path.join(str(tmp_path / "a" / "out"), finetune.CHECKPOINT))["model"]
    b = torch.load(os.path.join(resumed_args.out, finetune.CHECKPOINT))["model"]
    assert all(torch.equal(a[k], b[k]) for k in a), "a resumed run must end where an uninterrupted one does"
    assert second["valid_loss_after"] == straight["valid_loss_after"]


def test_resume_refuses_another_dataset(tmp_path):
    model = tiny_model_dir(tmp_path)
    args = args_for(tmp_path, model, tiny_dataset_dir(tmp_path / "d1"), "--steps", "2")
    quiet_run(args)
    args.data = tiny_dataset_dir(tmp_path / "d2", n_train=50)
    with pytest.raises(finetune.FinetuneError, match="another dataset"):
        quiet_run(args)


# ----------------------------------------------------------------------------- bad input


def corrupt(name):
    def f(data):
        with open(os.path.join(data, name), "ab") as fh:
            fh.write(b"\x01")
    return f


def remove(name):
    return lambda data: os.remove(os.path.join(data, name))


def set_meta(**kv):
    def f(data):
        p = os.path.join(data, "meta.json")
        with open(p) as fh:
            meta = json.load(fh)
        meta.update(kv)
        with open(p, "w") as fh:
            json.dump(meta, fh)
    return f


@pytest.mark.parametrize("name, damage, message", [
    ("missing data dir", lambda d: os.rename(d, d + ".gone"), "does not exist"),
    ("missing meta", remove("meta.json"), "meta.json: missing"),
    ("missing tokens", remove("valid.tokens.u32"), "valid.tokens.u32: missing"),
    ("truncated tokens", corrupt("train.tokens.u32"), "not a whole number"),
    ("mask longer than tokens", corrupt("train.mask.u8"), "mask bytes"),
    ("wrong example count", set_meta(train_examples=5), "offsets, meta.json says 5"),
    ("unknown version", set_meta(format_version=2), "format_version 2"),
    ("bigger vocabulary", set_meta(vocab_size=VOCAB + 1), "model vocab_size"),
    ("other tokenizer", set_meta(tokenizer_sha256="ab" * 32, tokenizer="other.json"), "rebuild it"),
    ("token out of vocab", set_meta(vocab_size=10), ">= vocab_size 10"),
    ("no model dir", lambda d: None, "model directory"),
])
def test_bad_input_gives_one_line_error(tmp_path, capsys, name, damage, message):
    model, data = tiny_model_dir(tmp_path), tiny_dataset_dir(tmp_path)
    damage(data)
    if name == "no model dir":
        model = model + ".missing"
    code = finetune.main(["--model", model, "--data", data, "--out", str(tmp_path / "out"), "--device", "cpu"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1
    assert len(err) == 1 and err[0].startswith("finetune: error:") and message in err[0], err


def test_dataset_round_trip(tmp_path):
    data = tiny_dataset_dir(tmp_path, n_train=5, n_valid=2)
    ds = dataset_io.load_dataset(data)
    assert (len(ds.train), len(ds.valid)) == (5, 2)
    rng = np.random.default_rng(3)
    ids, mask = example(rng)
    got_ids, got_mask = ds.train.example(0)
    assert got_ids.tolist() == ids and got_mask.tolist() == mask
    assert ds.train.target_tokens() == int(ds.train.mask.sum())


# ----------------------------------------------------------------------------- old path vs new path


def curve(tmp_path, name, model, data, *extra):
    """Train losses per step and the final validation loss of a 30-step run without dropout."""
    args = args_for(tmp_path / name, model, data, "--steps", "30", "--lr", "3e-3", "--eval-every", "30",
                    "--dropout", "0", "--samples", "0", *extra)
    summary, _ = quiet_run(args)
    with open(summary["report"]) as f:
        rep = json.load(f)
    return np.array([loss for _, loss in rep["history"]["train"]]), summary["valid_loss_after"]


def test_new_training_paths_keep_the_old_loss_curve(tmp_path):
    """Same seed, same data. The old path (logits at every position, bucketed and
    padded batches, fp32) against: the target rows only (same batches: the same
    curve to float rounding); packed batches (other batches: the same curve
    within noise); bf16 autocast (where the CPU has it)."""
    model, data = tiny_model_dir(tmp_path), tiny_dataset_dir(tmp_path)
    old, old_valid = curve(tmp_path, "old", model, data, "--layout", "bucket", "--full-logits", "--dtype", "fp32")
    assert old[-5:].mean() < old[:5].mean() - 0.3, "the task is learnable: the curve must fall"
    rows, rows_valid = curve(tmp_path, "rows", model, data, "--layout", "bucket", "--dtype", "fp32")
    np.testing.assert_allclose(rows, old, rtol=1e-4)
    assert rows_valid == pytest.approx(old_valid, rel=1e-4)
    variants = [("pack", "--layout", "pack", "--dtype", "fp32")]
    if finetune.cpu_has_bf16():
        variants.append(("bf16", "--layout", "pack", "--dtype", "bf16"))
    for name, *flags in variants:
        new, new_valid = curve(tmp_path, name, model, data, *flags)
        # Windows of 10 steps: packing changes which examples share a step, so single steps differ.
        for a, b in zip(old.reshape(3, 10).mean(1), new.reshape(3, 10).mean(1)):
            assert b == pytest.approx(a, rel=0.03), (name, old, new)
        assert new_valid == pytest.approx(old_valid, rel=0.03), name


def sdpa_as_documented(q, k, v, attn_mask=None, dropout_p=0.0, is_causal=False):
    """torch 2's F.scaled_dot_product_attention as its documentation defines it (no dropout)."""
    L, S = q.size(-2), k.size(-2)
    bias = torch.zeros(L, S)
    if is_causal:
        bias = bias.masked_fill(~torch.ones(L, S, dtype=torch.bool).tril(), float("-inf"))
    if attn_mask is not None:
        bias = bias + torch.zeros_like(attn_mask, dtype=q.dtype).masked_fill(~attn_mask, float("-inf"))
    w = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(q.size(-1)) + bias, dim=-1)
    return w @ v


@pytest.mark.parametrize("packed", [False, True])
def test_sdpa_path_passes_the_mask_sdpa_expects(monkeypatch, tiny_model, packed):
    """torch 1.13 has no SDPA, so the torch 2 branch runs here against SDPA's documented
    semantics: it must give what the 1.13 path gives, causal and block-diagonal alike."""
    ids = torch.randint(0, 300, (2, 12), generator=torch.Generator().manual_seed(0))
    pos = seg = None
    if packed:
        seg = torch.tensor([[1] * 5 + [2] * 7, [1] * 9 + [0] * 3])
        pos = torch.tensor([list(range(5)) + list(range(7)), list(range(9)) + list(range(3))])
    with torch.no_grad():
        monkeypatch.setattr(gpt2, "USE_SDPA", False)
        want = tiny_model.hidden(ids, pos, seg)
        monkeypatch.setattr(torch.nn.functional, "scaled_dot_product_attention", sdpa_as_documented, raising=False)
        monkeypatch.setattr(gpt2, "USE_SDPA", True)
        got = tiny_model.hidden(ids, pos, seg)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    if packed:  # and the second example of row 0 is the example alone
        with torch.no_grad():
            alone = tiny_model.hidden(ids[:1, 5:])
        torch.testing.assert_close(got[0, 5:], alone[0], rtol=1e-5, atol=1e-5)


def test_compile_needs_torch_2(tmp_path, capsys):
    if hasattr(torch, "compile"):
        pytest.skip("this torch has torch.compile")
    model, data = tiny_model_dir(tmp_path), tiny_dataset_dir(tmp_path)
    code = finetune.main(["--model", model, "--data", data, "--out", str(tmp_path / "o"), "--compile", "--steps", "1"])
    assert code == 1 and "--compile needs torch >= 2" in capsys.readouterr().err


def test_cpu_dropout_keeps_the_distribution():
    """gpt2.dropout draws its CPU mask with torch.rand instead of bernoulli_: same keep rate and scale."""
    drop = torch.nn.Dropout(0.25).train()
    x = torch.ones(200_000)
    y = gpt2.dropout(drop, x)
    kept = y != 0
    assert kept.float().mean().item() == pytest.approx(0.75, abs=0.01)
    assert torch.allclose(y[kept], torch.full_like(y[kept], 1 / 0.75))
    assert torch.equal(gpt2.dropout(drop.eval(), x), x)
