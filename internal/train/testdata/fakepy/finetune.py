"""A stand-in for model/python/finetune.py that needs no torch: it speaks the
progress protocol (--progress-json) and keeps a checkpoint of its step, so
the Go orchestration (stages, resume, interrupts, errors) is tested alone.

FAKE_MODE (environment): "" trains; "fail" fails like a real error;
"wait" prints its first step, then waits for SIGINT and leaves a checkpoint.
"""
import argparse
import json
import os
import signal
import sys
import time

p = argparse.ArgumentParser()
for a in ("--model", "--data", "--out", "--device"):
    p.add_argument(a, required=True)
p.add_argument("--steps", type=int, default=0)
p.add_argument("--epochs", type=float, default=0)
p.add_argument("--progress-json", action="store_true")
args = p.parse_args()

if not os.path.isfile(os.path.join(args.data, "meta.json")):
    sys.exit("finetune: error: no dataset in " + args.data)
os.makedirs(args.out, exist_ok=True)
ckpt = os.path.join(args.out, "checkpoint.json")
step = json.load(open(ckpt))["step"] if os.path.exists(ckpt) else 0
total = args.steps or 4
with open(os.path.join(args.out, "runs.txt"), "a") as f:
    f.write(" ".join(sys.argv[1:]) + f" from={step}\n")


def emit(**ev):
    print("human noise on stdout")
    print(json.dumps(ev), flush=True)


def save(step):
    json.dump({"step": step}, open(ckpt, "w"))


print("finetune: loading the model", file=sys.stderr, flush=True)
if os.environ.get("FAKE_MODE") == "fail":
    print("Traceback (most recent call last):\n  File x", file=sys.stderr)
    print("finetune: error: the dataset was made with another tokenizer", file=sys.stderr)
    print("finetune: bye", file=sys.stderr)
    sys.exit(1)
if step > 0:
    print(f"finetune: resumed from {ckpt} at step {step}", file=sys.stderr, flush=True)
emit(event="start", total_steps=total, tokens_per_step=100)
emit(event="mystery", x=1)
emit(event="eval", step=step, valid_loss=4.0, valid_ppl=54.6)
stopped = []
signal.signal(signal.SIGINT, lambda *_: stopped.append(True))
while step < total:
    step += 1
    emit(event="step", step=step, total_steps=total, loss=4.0 - step / 10, lr=1e-4,
         tokens_per_s=1000.0, elapsed_s=step * 0.01, eta_s=(total - step) * 0.01)
    if os.environ.get("FAKE_MODE") == "wait":
        while not stopped:
            time.sleep(0.01)
    if stopped:
        save(step)
        print(f"finetune: stopping at step {step}/{total}; run again with the same --out to resume", file=sys.stderr)
        sys.exit(130)
save(step)
os.makedirs(os.path.join(args.out, "best"), exist_ok=True)
open(os.path.join(args.out, "best", "config.json"), "w").write("{}")
report = {"valid_ppl_before": 54.6, "valid_ppl_after": 40.0, "train_tokens_per_s": 1000.0, "steps": step}
json.dump(report, open(os.path.join(args.out, "report.json"), "w"))
open(os.path.join(args.out, "report.md"), "w").write("# report\n![loss](loss.svg)\n")
open(os.path.join(args.out, "loss.svg"), "w").write("<svg/>")
emit(event="eval", step=step, valid_loss=3.69, valid_ppl=40.0)
emit(event="done", report=os.path.join(args.out, "report.json"))
