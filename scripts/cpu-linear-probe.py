"""Times the Linear layers of one GPT-2-small decode step (12 layers + output layer, one row) on the CPU.

For choosing a smaller-weights option per machine: fp32 and bf16 through torch.mv (what gpt2.py does for
one row) and through F.linear, and dynamic int8 under each quantized engine this torch has. Every layer has
its own weights, as in the model, so caches do not flatter the numbers. Usage:
    python3 scripts/cpu-linear-probe.py [THREADS]
"""
import sys
import time
import warnings

import torch
import torch.nn.functional as F

SHAPES = [(2304, 768), (768, 768), (3072, 768), (768, 3072)] * 12 + [(50264, 768)]


def per_step_ms(calls, rounds=8):
    for _ in range(2):
        for c in calls:
            c()
    t = time.perf_counter()
    for _ in range(rounds):
        for c in calls:
            c()
    return (time.perf_counter() - t) / rounds * 1e3


def float_calls(dtype, how):
    calls = []
    for out, inp in SHAPES:
        w, x, b = torch.randn(out, inp).to(dtype), torch.randn(1, inp).to(dtype), torch.randn(out).to(dtype)
        if how == "mv":
            calls.append(lambda w=w, x=x, b=b: torch.mv(w, x.view(-1)) + b)
        else:
            calls.append(lambda w=w, x=x, b=b: F.linear(x, w, b))
    return calls


def int8_calls():
    calls = []
    for out, inp in SHAPES:
        layer = torch.nn.Sequential(torch.nn.Linear(inp, out))
        q = torch.ao.quantization.quantize_dynamic(layer, {torch.nn.Linear}, dtype=torch.qint8)
        x = torch.randn(1, inp)
        calls.append(lambda q=q, x=x: q(x))
    return calls


def main():
    # torch 2.10+ warns that torch.ao.quantization will move to torchao; its kernels are what is timed.
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    threads = int(sys.argv[1]) if len(sys.argv) > 1 else 2
    torch.set_num_threads(threads)
    print(f"torch {torch.__version__}, {threads} threads, linears of one decode step (ms):")
    with torch.inference_mode():
        for name, dtype in (("float32", torch.float32), ("bfloat16", torch.bfloat16)):
            for how in ("mv", "linear"):
                print(f"  {name:8} {how:6} {per_step_ms(float_calls(dtype, how)):7.2f}", flush=True)
        for engine in torch.backends.quantized.supported_engines:
            if engine in ("none", "qnnpack"):  # qnnpack is for ARM
                continue
            torch.backends.quantized.engine = engine
            print(f"  int8     {engine:6} {per_step_ms(int8_calls()):7.2f}", flush=True)


if __name__ == "__main__":
    main()
