"""The cached step (the bridge's contract) against the training forward of the same model."""

import pytest
import torch

import gpt2

TOL = 1e-5


def full_logits(model, ids):
    with torch.no_grad():
        return model(torch.tensor([ids]))[0]


def run_step(model, ids, past_len, past, lengths=None):
    lengths = lengths or [len(ids)]
    args = gpt2.causal_step_inputs(lengths, past_len=past_len, ids=[ids] if lengths == [len(ids)] else ids)
    input_ids, pos, mask, last = args
    with torch.no_grad():
        return model.step(input_ids, pos, mask, past, last)


@pytest.mark.parametrize(
    "chunks",
    [
        pytest.param([10], id="prefill-all"),
        pytest.param([4, 1, 1, 1, 1, 1, 1], id="prefill-then-decode"),
        pytest.param([1] * 10, id="token-by-token"),
        pytest.param([3, 4, 3], id="chunked-prefill"),
    ],
)
def test_cached_step_equals_full_forward(tiny_model, chunks):
    ids = torch.randint(0, 300, (sum(chunks),), generator=torch.Generator().manual_seed(1)).tolist()
    want = full_logits(tiny_model, ids)
    past, done = gpt2.empty_past(tiny_model.config, 1), 0
    for n in chunks:
        logits, present = run_step(tiny_model, ids[done : done + n], done, past)
        assert logits.dtype == torch.float32 and logits.shape == (1, 300)
        assert present.shape == (2, 2, 1, 2, n, 8)
        done += n
        diff = (logits[0] - want[done - 1]).abs().max().item()
        assert diff < TOL, f"after {done} tokens the step differs from the full forward by {diff}"
        past = torch.cat([past, present], dim=4)


def test_present_holds_the_new_keys(tiny_model):
    """Prefill of 6 == prefill of 4 then 2 more: the cache is the same either way."""
    ids = list(range(10, 16))
    _, whole = run_step(tiny_model, ids, 0, gpt2.empty_past(tiny_model.config, 1))
    _, first = run_step(tiny_model, ids[:4], 0, gpt2.empty_past(tiny_model.config, 1))
    _, second = run_step(tiny_model, ids[4:], 4, first)
    assert (torch.cat([first, second], dim=4) - whole).abs().max().item() < TOL


def test_batch_of_different_lengths_matches_each_alone(tiny_model):
    g = torch.Generator().manual_seed(2)
    rows = [torch.randint(0, 300, (n,), generator=g).tolist() for n in (2, 7, 5)]
    lengths = [len(r) for r in rows]
    cfg = tiny_model.config
    logits, present = run_step(tiny_model, rows, 0, gpt2.empty_past(cfg, 3), lengths)
    assert not torch.isnan(logits).any() and not torch.isnan(present).any()
    for b, row in enumerate(rows):
        alone, _ = run_step(tiny_model, row, 0, gpt2.empty_past(cfg, 1))
        assert (logits[b] - alone[0]).abs().max().item() < TOL, f"row {b} differs from running it alone"

    # One decode step on the shared (padded) cache: each row attends to its own valid slots only.
    S = max(lengths)
    nxt = [[7], [8], [9]]
    mask = torch.zeros(3, 1, 1, S + 1, dtype=torch.bool)
    for b, n in enumerate(lengths):
        mask[b, 0, 0, :n] = True
        mask[b, 0, 0, S] = True
    with torch.no_grad():
        step, _ = tiny_model.step(torch.tensor(nxt), torch.tensor(lengths).view(3, 1), mask, present,
                                  torch.zeros(3, dtype=torch.long))
    for b, row in enumerate(rows):
        want = full_logits(tiny_model, row + nxt[b])[-1]
        assert (step[b] - want).abs().max().item() < TOL, f"decode of row {b} differs from the full forward"


def test_step_in_bfloat16_returns_float32_logits_and_model_dtype_cache(tiny_model):
    model = tiny_model.to(torch.bfloat16)
    past = gpt2.empty_past(model.config, 1, torch.bfloat16)
    logits, present = run_step(model, [1, 2, 3], 0, past)
    assert logits.dtype == torch.float32
    assert present.dtype == torch.bfloat16


def test_training_forward_dropout_only_in_train_mode(tiny_model):
    ids = torch.tensor([[1, 2, 3, 4]])
    with torch.no_grad():
        a, b = tiny_model(ids), tiny_model(ids)
        assert torch.equal(a, b), "eval forward must be deterministic"
        tiny_model.train()
        torch.manual_seed(0)
        c = tiny_model(ids)
        tiny_model.eval()
    assert not torch.allclose(a, c), "train mode should apply dropout 0.1"


def test_training_forward_rejects_too_long(tiny_model):
    with pytest.raises(ValueError, match="n_positions"):
        tiny_model(torch.zeros(1, 33, dtype=torch.long))


def test_greedy_min_new_bans_the_stop_ids_at_first(tiny_model):
    prompt = [5, 6, 7]
    first = gpt2.greedy(tiny_model, prompt, 1)[0]
    assert gpt2.greedy(tiny_model, prompt, 1, stop_ids=[first]) == [first]
    banned = gpt2.greedy(tiny_model, prompt, 3, stop_ids=[first], min_new=1)
    assert banned[0] != first
