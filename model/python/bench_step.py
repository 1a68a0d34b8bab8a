"""Times an exported step (OUT/model.pt) from Python: one prefill and N decode steps per batch size.

    /usr/bin/python3 model/python/bench_step.py --model DIR [--device cpu|cuda] [--prompt 32] [--steps 32]

A baseline for the Go/bridge numbers; prints one line per batch size (median milliseconds).
"""

import argparse
import json
import os
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import export  # noqa: E402
import gpt2  # noqa: E402


def sync(device):
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def run(traced, cfg, dtype, device, B, prompt, steps):
    ids, pos, mask, last = (t.to(device) for t in gpt2.causal_step_inputs([prompt] * B))
    past = gpt2.empty_past(cfg, B, dtype, device)
    sync(device)
    t0 = time.perf_counter()
    logits, present = traced(ids, pos, mask, past, last)
    sync(device)
    prefill = time.perf_counter() - t0
    past, times = present, []
    for _ in range(steps):
        S = past.size(4)
        nxt = logits.argmax(-1, keepdim=True)
        pos = torch.full((B, 1), S, dtype=torch.long, device=device)
        mask = torch.ones(B, 1, 1, S + 1, dtype=torch.bool, device=device)
        t0 = time.perf_counter()
        logits, present = traced(nxt, pos, mask, past, torch.zeros(B, dtype=torch.long, device=device))
        past = torch.cat([past, present], dim=4)
        sync(device)
        times.append(time.perf_counter() - t0)
    return prefill * 1e3, statistics.median(times) * 1e3


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True)
    p.add_argument("--device", default="cpu")
    p.add_argument("--prompt", type=int, default=32)
    p.add_argument("--steps", type=int, default=32)
    p.add_argument("--batch", default="1,4,16")
    a = p.parse_args()
    meta = json.load(open(os.path.join(a.model, "dialogbot.json")))
    cfg = gpt2.GPT2Config(**{k: meta[k] for k in ("n_layer", "n_head", "n_embd", "vocab_size", "n_positions")})
    dtype = export.DTYPES[meta["dtype"]]
    traced = torch.jit.load(os.path.join(a.model, "model.pt"), map_location=a.device)
    print(f"{meta['source']} {meta['dtype']} on {a.device} (torch {torch.__version__}): prompt {a.prompt}, {a.steps} steps")
    with torch.no_grad():
        run(traced, cfg, dtype, a.device, 1, a.prompt, 3)  # warm-up: the profiling executor optimises on first runs
        for B in (int(b) for b in a.batch.split(",")):
            pre, dec = run(traced, cfg, dtype, a.device, B, a.prompt, a.steps)
            print(f"batch {B:3d}: prefill {pre:8.2f} ms   decode step median {dec:7.2f} ms")


if __name__ == "__main__":
    main()
