"""One GPT-2-small-shaped decode step (batch 1, past 32) on the CPU, four ways, in one process.

    /usr/bin/python3 scripts/cpu-int8-probe.py [--threads 2] [--rounds 15] [--bridge bin/libcbridge.so]

- eager fp32:   gpt2.GPT2.step (random weights, seed 0), plain PyTorch
- eager int8:   the same after torch.ao.quantization.quantize_dynamic on every Linear (default
                quantized engine: oneDNN on Debian's torch): what ../shared/bench/eager_decode_step.py
                calls "int8-dynamic", and issue 12's reference
- export fp32:  the TorchScript file export.py writes (float32), as the bridge runs it
- export int8:  the same with --quantize int8, its Linear layers running the bridge's kernel
                (dialogbot::linear_w8, loaded from libcbridge.so)

The four alternate round by round and each reports its median, so a machine shared with other work
slows all of them alike. The bridge adds its own per-step work (inputs, cache writes, top-k) on top of
the export's step: `dialogbot bench` measures that whole path.
"""
import argparse
import os
import statistics
import sys
import tempfile
import time
import warnings

# As the bridge does (torch/cbridge.go): OpenMP threads sleep between parallel regions unless the caller
# chose otherwise. Set before torch loads libgomp, which reads it once; all four ways share it.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--rounds", type=int, default=15)
    p.add_argument("--past", type=int, default=32)
    p.add_argument("--bridge", default=os.path.join(ROOT, "bin", "libcbridge.so"))
    a = p.parse_args()
    warnings.filterwarnings("ignore")
    torch.ops.load_library(a.bridge)  # before int8.py: the bridge's kernel, not the reference
    sys.path.insert(0, os.path.join(ROOT, "model", "python"))
    import export  # noqa: E402
    import gpt2  # noqa: E402

    torch.set_num_threads(a.threads)
    cfg = gpt2.GPT2Config(**export.SHAPES["gpt2-small"])
    fp32 = gpt2.random_gpt2(cfg, seed=0).eval()
    dyn = torch.ao.quantization.quantize_dynamic(gpt2.random_gpt2(cfg, seed=0).eval(), {torch.nn.Linear}, dtype=torch.qint8)
    traced = {}
    with tempfile.TemporaryDirectory() as d:
        for name, quant in (("fp32", None), ("int8", "int8")):
            args = export.parse_args(["--random-shape", "gpt2-small", "--tokenizer", "unused", "--out", d]
                                     + (["--quantize", quant] if quant else []))
            model = gpt2.random_gpt2(cfg, seed=0)
            t, _, _ = export.build_trace(model, args, log=lambda s: None)
            path = os.path.join(d, f"{name}.pt")
            torch.jit.save(t, path)
            traced[name] = torch.jit.load(path)
    torch._C._set_graph_executor_optimize(False)  # as the bridge runs it
    S = a.past
    ids, pos = torch.randint(0, cfg.vocab_size, (1, 1)), torch.full((1, 1), S)
    mask, last = torch.ones(1, 1, 1, S + 1, dtype=torch.bool), torch.zeros(1, dtype=torch.long)
    past = torch.randn(cfg.n_layer, 2, 1, cfg.n_head, S, cfg.head_dim)
    ways = {
        "eager fp32": lambda: fp32.step(ids, pos, mask, past, last),
        "eager int8 (quantize_dynamic)": lambda: dyn.step(ids, pos, mask, past, last),
        "export fp32": lambda: traced["fp32"](ids, pos, mask, past, last),
        "export int8 (linear_w8)": lambda: traced["int8"](ids, pos, mask, past, last),
    }
    times = {k: [] for k in ways}
    with torch.inference_mode():
        for f in ways.values():  # warm-up: one-row shapes first, as the bridge does
            for _ in range(3):
                f()
        for _ in range(a.rounds):
            for k, f in ways.items():
                t = time.perf_counter()
                f()
                times[k].append(time.perf_counter() - t)
    print(f"torch {torch.__version__}, {a.threads} threads, engine {torch.backends.quantized.engine}, "
          f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset')}, load average {os.getloadavg()[0]:.2f}; "
          f"decode step, batch 1, past {S}, median of {a.rounds}:")
    ref = statistics.median(times["eager int8 (quantize_dynamic)"])
    for k, v in times.items():
        m = statistics.median(v)
        print(f"  {k:32s} {m * 1e3:7.2f} ms   eager int8 / this = {ref / m:4.2f}x")


if __name__ == "__main__":
    main()
