"""dialogbot::attend_one: the bridge's kernel (cbridge/attend.cpp) against bridge_ops' reference."""

import os
import subprocess
import sys
import textwrap

import pytest
import torch

import bridge_ops
import gpt2
from conftest import HERE, REPO_ROOT

BRIDGE = os.path.join(REPO_ROOT, "bin", "libcbridge.so")


def test_reference_is_softmax_attention_over_cache_and_token():
    """The reference equals plain attention over the cache concatenated with the new token."""
    torch.manual_seed(0)
    B, H, S, D = 2, 3, 5, 8
    q, k, v = (torch.randn(B, H, 1, D) for _ in range(3))
    past_k, past_v = torch.randn(B, H, S, D), torch.randn(B, H, S, D)
    mask = torch.ones(B, 1, 1, S + 1, dtype=torch.bool)
    mask[1, 0, 0, :2] = False  # row 1 does not see its first two cached tokens
    keys, values = torch.cat([past_k, k], 2), torch.cat([past_v, v], 2)
    scores = (q @ keys.transpose(-1, -2)) * 0.25
    scores = scores.masked_fill(~mask, float("-inf"))
    want = torch.softmax(scores, -1) @ values
    got = bridge_ops.attend_one_reference(q, k, v, past_k, past_v, mask, 0.25)
    torch.testing.assert_close(got, want)


def test_decode_step_calls_the_op():
    """The scripted attention sends one new token to dialogbot::attend_one (what the bridge replaces)."""
    assert "dialogbot::attend_one" in str(gpt2.cached_attention.graph)


# Run in a child process: loading the bridge defines the dialogbot ops there, so that
# torch.ops.dialogbot.attend_one is the C++ kernel while bridge_ops keeps the reference.
KERNEL_CHECK = textwrap.dedent("""
    import sys, torch
    torch.ops.load_library(sys.argv[1])
    sys.path.insert(0, sys.argv[2])
    import bridge_ops
    assert bridge_ops.LIB is None, "the bridge's library should define the ops"
    torch.manual_seed(0)
    worst = 0.0
    cases = 0
    for B, H, S, D in ((1, 12, 0, 64), (1, 12, 1, 64), (1, 12, 41, 64), (1, 2, 7, 13), (3, 4, 300, 64),
                       (32, 12, 120, 64)):
        # The cache as the bridge passes it: a narrow view of a bigger pool (not contiguous).
        pool = torch.randn(2, B + 2, H, S + 9, D)
        past_k, past_v = pool[0, 1:B + 1, :, :S], pool[1, 1:B + 1, :, :S]
        qkv = torch.randn(B, 1, 3 * H * D).split(H * D, dim=2)
        q, k, v = (t.view(B, 1, H, D).transpose(1, 2) for t in qkv)
        mask = torch.rand(B, 1, 1, S + 1) > 0.3
        mask[..., -1] = True
        mask[0, ..., :S] = False  # a row that sees only itself
        for m in (mask, mask[:1]):  # per row, and one mask broadcast over the rows
            got = torch.ops.dialogbot.attend_one(q, k, v, past_k, past_v, m, 0.125)
            want = bridge_ops.attend_one_reference(q, k, v, past_k, past_v, m, 0.125)
            assert got.shape == want.shape, (got.shape, want.shape)
            d = float((got - want).abs().max() / want.abs().max().clamp(min=1e-30))
            assert d < 1e-5, (B, H, S, D, d)
            worst = max(worst, d)
            cases += 1
    # Other dtypes take libtorch's ops: the reference's result exactly.
    q16, k16, v16 = (t.to(torch.bfloat16) for t in (q, k, v))
    pk16, pv16 = past_k.to(torch.bfloat16), past_v.to(torch.bfloat16)
    got = torch.ops.dialogbot.attend_one(q16, k16, v16, pk16, pv16, mask, 0.125)
    assert torch.equal(got, bridge_ops.attend_one_reference(q16, k16, v16, pk16, pv16, mask, 0.125))
    print(f"{cases} cases, worst relative difference {worst:.2g}")
""")


@pytest.mark.skipif(not os.path.isfile(BRIDGE), reason=f"{BRIDGE} not built (make bridge)")
def test_bridge_kernel_matches_reference():
    res = subprocess.run([sys.executable, "-c", KERNEL_CHECK, BRIDGE, HERE], capture_output=True,
                         text=True, cwd="/")
    assert res.returncode == 0, res.stderr[-2000:]
    assert "worst relative difference" in res.stdout
    print(res.stdout)
