"""int8.py and the bridge's kernel for it (cbridge/linear_w8.cpp)."""

import os
import subprocess
import sys
import textwrap

import pytest
import torch
import torch.nn as nn

import int8
from conftest import HERE, REPO_ROOT


def test_quantize_rounds_each_row_to_its_own_scale():
    torch.manual_seed(0)
    lin = nn.Linear(16, 5)
    with torch.no_grad():
        lin.weight[2] *= 100  # one row far larger: a per-tensor scale would crush the others
    q = int8.Int8Linear.from_linear(lin)
    assert q.weight.dtype == torch.int8 and q.weight.abs().max() == 127
    err = (q.dequantized() - lin.weight).abs()
    assert bool((err <= q.scale.unsqueeze(1) / 2 + 1e-7).all()), "an error above half a step"
    assert float(err[0].max()) < float(lin.weight[0].abs().max()) / 100


def test_one_row_without_vnni_is_weight_only_and_exact_up_to_rounding(monkeypatch):
    monkeypatch.setattr(int8, "DIRECT_VNNI", False)
    torch.manual_seed(1)
    lin = nn.Linear(24, 7)
    q = int8.Int8Linear.from_linear(lin)
    x = torch.randn(1, 1, 24)
    want = torch.nn.functional.linear(x, q.dequantized(), lin.bias)
    got = int8._reference(x, q.weight, q.scale, q.bias)
    assert torch.allclose(got, want, atol=1e-6)


def test_one_row_with_vnni_errs_by_at_most_half_an_activation_step():
    torch.manual_seed(2)
    lin = nn.Linear(3072, 9)  # the most features GPT-2 has: the fewest levels (5504)
    q = int8.Int8Linear.from_linear(lin)
    x = torch.randn(1, 3072) * 2 + 0.5
    got = int8._direct_vnni(x, q.weight, q.scale, q.bias)
    want = torch.nn.functional.linear(x, q.dequantized(), lin.bias)
    step = float(x.abs().max()) / int8._row_levels(3072)
    bound = step / 2 * q.dequantized().abs().sum(dim=1) + 1e-4
    assert bool(((got - want).abs() <= bound).all())
    assert not torch.equal(got, want), "the row was not quantized"


def test_row_levels_keep_int32_sums_from_overflowing():
    for n in (1, 5, 516, 517, 768, 3072, 10**6, 10**9):
        levels = int8._row_levels(n)
        assert 1 <= levels <= 32767
        assert n * 127 * levels <= 2**31 - 1 or levels == 1
    assert int8._row_levels(516) == 32767 and int8._row_levels(3072) == 5504


def test_vnni_mirror_is_exact_on_the_grid_and_handles_constant_rows():
    torch.manual_seed(3)
    lin = nn.Linear(70, 5)
    q = int8.Int8Linear.from_linear(lin)
    qx = torch.randint(-32767, 32768, (1, 70))
    qx[0, 0] = 32767  # max|x| = 32767/8: s = 1/8, q = 8x
    x = qx.float() / 8
    got = int8._direct_vnni(x, q.weight, q.scale, None)
    exact = (qx @ q.weight.long().t()).float() * (q.scale / 8)
    assert torch.allclose(got, exact, rtol=1e-6, atol=0)
    for row in (torch.zeros(1, 70), torch.full((1, 70), 3.0), torch.full((1, 70), -2.0)):
        want = torch.nn.functional.linear(row, q.dequantized())
        assert torch.allclose(int8._direct_vnni(row, q.weight, q.scale, None), want, rtol=1e-5, atol=1e-6)


def test_quantize_replaces_every_linear():
    m = nn.Sequential(nn.Linear(4, 4), nn.Sequential(nn.ReLU(), nn.Linear(4, 2)))
    int8.quantize(m)
    assert not any(isinstance(x, nn.Linear) for x in m.modules())
    assert sum(isinstance(x, int8.Int8Linear) for x in m.modules()) == 2


BRIDGE = os.path.join(REPO_ROOT, "bin", "libcbridge.so")

# Run in a child process: loading the bridge defines dialogbot::linear_w8 there, which int8.py then
# leaves to the bridge's kernel instead of defining its reference version.
KERNEL_CHECK = textwrap.dedent("""
    import os, sys, torch
    torch.ops.load_library(sys.argv[1])
    sys.path.insert(0, sys.argv[2])
    import int8
    torch.manual_seed(0)
    worst = 0.0
    for rows in (1, 2, 3, 5, 40, 300) * int(os.environ.get("CHECK_ROUNDS", "1")):
        for out_f, in_f, bias in ((7, 5, True), (64, 24, False), (300, 777, True), (2304, 768, True)):
            q = int8.Int8Linear.from_linear(torch.nn.Linear(in_f, out_f, bias=bias))
            x = torch.randn(rows, in_f) * 3 + 1
            if rows == 1 and in_f == 777:
                x[0, :] = 0.0  # an all-zero row (a zero scale)
            elif rows == 1 and in_f == 24:
                x = -x.abs()  # no positive value
            got = q(x)
            want = int8._reference(x, q.weight, q.scale, q.bias)
            d = float((got - want).abs().max() / want.abs().max())
            assert d < 1e-5, (rows, out_f, in_f, d)
            worst = max(worst, d)
    print(f"worst relative difference {worst:.2g}")
""")


@pytest.mark.skipif(not os.path.isfile(BRIDGE), reason=f"{BRIDGE} not built (make bridge)")
@pytest.mark.parametrize("vnni,steal_after_us,rounds", [("", "", "1"), ("0", "", "1"), ("", "0", "10"), ("0", "0", "10")],
                         ids=["this CPU's path", "AVX2 path", "the caller races the helpers for every chunk",
                              "AVX2 path, the caller races the helpers"])
def test_bridge_kernel_matches_reference(vnni, steal_after_us, rounds):
    """The C++ kernel against int8.py, path for path: the direct kernel (VNNI's for every row count
    where the CPU has it; AVX2's up to 4 rows) and the engine's tiles. The third run makes the
    caller take over every chunk a helper holds (cbridge/workers.cpp), so that both compute most
    chunks and one result must win whole, ten times over."""
    env = dict(os.environ, DIALOGBOT_W8_VNNI=vnni, DIALOGBOT_W8_STEAL_AFTER_US=steal_after_us,
               CHECK_ROUNDS=rounds)
    res = subprocess.run([sys.executable, "-c", KERNEL_CHECK, BRIDGE, HERE], capture_output=True,
                         text=True, cwd="/", env=env)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "worst relative difference" in res.stdout
