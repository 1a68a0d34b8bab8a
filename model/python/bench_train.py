#!/usr/bin/env python3
"""Training speed of finetune.py, or of another copy of it, on the same command.

    /usr/bin/python3 model/python/bench_train.py [--impl DIR] -- FINETUNE-ARGS...

Runs finetune.run with the given arguments and times only the optimizer steps
(not loading, validation or the report): wall time and this process's CPU
time. Prints one JSON line: steps, tokens, wall_s, cpu_s, tokens_per_s,
tokens_per_cpu_s and the per-step losses. --impl DIR imports finetune.py and
its modules from DIR instead (for example the version before a change:
`git show main:model/python/finetune.py` and friends into a directory), so
before and after run the same command. On a shared machine compare runs made
alternately, and tokens per CPU-second as well as per second.
"""

import argparse
import importlib
import json
import os
import sys
import time


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--impl", default=os.path.dirname(os.path.abspath(__file__)),
                   help="directory holding the finetune.py to time")
    # parse_known_args: torchrun drops the "--", and finetune.py parses the rest itself.
    a, rest = p.parse_known_args(argv)
    rest = rest[1:] if rest[:1] == ["--"] else rest
    sys.path.insert(0, os.path.abspath(a.impl))
    ft = importlib.import_module("finetune")
    args = ft.parse_args(rest)
    timing = {"wall": 0.0, "cpu": 0.0, "tokens": 0, "steps": 0, "losses": []}  # and "trainer"
    step = ft.Trainer.train_step

    def timed(self):
        tokens0 = self.prog.tokens
        w0, c0 = time.monotonic(), time.process_time()
        out = step(self)
        if isinstance(out, tuple):  # the old train_step returned (loss, tokens) after .item()
            timing["losses"].append(out[0])
        else:  # the new one keeps its losses on the device until a progress line reads them
            timing["trainer"] = self
        timing["wall"] += time.monotonic() - w0
        timing["cpu"] += time.process_time() - c0
        timing["tokens"] += self.prog.tokens - tokens0
        timing["steps"] += 1
        return out

    ft.Trainer.train_step = timed
    ft.run(args, log=lambda m: print(f"bench_train: {m}", file=sys.stderr, flush=True))
    if "trainer" in timing:
        timing["losses"] = [loss for _, loss in timing["trainer"].prog.train_history]
    print(json.dumps({"impl": a.impl, "steps": timing["steps"], "tokens": timing["tokens"],
                      "wall_s": round(timing["wall"], 3), "cpu_s": round(timing["cpu"], 3),
                      "tokens_per_s": round(timing["tokens"] / timing["wall"], 1),
                      "tokens_per_cpu_s": round(timing["tokens"] / timing["cpu"], 1),
                      "losses": [round(x, 4) for x in timing["losses"]]}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
