"""The CPU-traced export on CUDA (runs only where CUDA is present, e.g. the GPU machine's torch 2.x)."""

import pytest
import torch

import export
import gpt2
from test_export import OTHER_SHAPES, run_export

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")


@pytest.fixture(scope="module")
def hf_dir(tmp_path_factory):
    from conftest import make_hf_dir

    d = str(tmp_path_factory.mktemp("hf"))
    make_hf_dir(d)
    return d


@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
def test_cpu_trace_runs_on_cuda(tmp_path, hf_dir, dtype):
    logs = []
    run_export(["--hf", hf_dir, "--out", str(tmp_path), "--dtype", dtype], logs)
    assert any("reloaded on cuda" in line for line in logs), logs
    dt = export.DTYPES[dtype]
    traced = torch.jit.load(str(tmp_path / "model.pt"), map_location="cuda")
    eager = gpt2.load_hf(hf_dir, device="cuda", dtype=dt)
    cpu = gpt2.load_hf(hf_dir)
    with torch.no_grad():
        for B, T, S in OTHER_SHAPES:
            args = export.step_inputs(eager.config, B, T, S, dt, device="cuda", seed=5)
            got = traced(*args)
            assert got[0].device.type == "cuda" and got[1].dtype == dt
            assert export.max_diff(got, eager.step(*args)) < export.tolerance(dt)
            # Same numbers as the CPU in float32 (16-bit types differ by their rounding).
            want = cpu.step(*[a.cpu().float() if a.is_floating_point() else a.cpu() for a in args])[0]
            tol = 1e-4 if dt == torch.float32 else 0.1
            assert (got[0].cpu() - want).abs().max().item() < tol
