"""A stand-in for finetune.py before the progress protocol: human step lines
on stderr (one per --log-every steps) and the JSON summary as the last
stdout line; no report.json, a summary.json."""
import argparse
import json
import os
import sys

p = argparse.ArgumentParser()
for a in ("--model", "--data", "--out", "--device"):
    p.add_argument(a, required=True)
p.add_argument("--steps", type=int, default=3)
p.add_argument("--log-every", type=int, default=10)
args = p.parse_args()
os.makedirs(os.path.join(args.out, "best"), exist_ok=True)
open(os.path.join(args.out, "best", "config.json"), "w").write("{}")
log = lambda m: print("finetune: " + m, file=sys.stderr, flush=True)
log("valid before step 0: loss 4.0000 ppl 54.598")
for s in range(1, args.steps + 1):
    if s % args.log_every == 0:
        log(f"step {s}/{args.steps} loss 3.5000 lr 1.00e-04 tok/s 812 elapsed 0:00:0{s} eta 0:00:0{args.steps - s}")
summary = {"steps": args.steps, "valid_ppl_before": 54.598, "valid_ppl_after": 33.1, "tokens_per_s": 812.0}
json.dump(summary, open(os.path.join(args.out, "summary.json"), "w"))
print(json.dumps(summary))
