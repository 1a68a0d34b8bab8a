#!/usr/bin/env python3
"""torchrun that also works with Debian's torch 1.13 on Python 3.11.

    /usr/bin/python3 model/python/torchrun.py --standalone --nproc_per_node 2 model/python/finetune.py ...

Same arguments as torchrun (torch.distributed.run). torch 1.13's Std.from_str
finds the stream-redirect setting by iterating the Std flag enum, and from
Python 3.11 on that iteration skips the zero member NONE, so plain torchrun
dies with "'NoneType' object has no attribute 'get'" before starting a
worker. This maps the lost value back to Std.NONE, then runs torchrun.
"""

import sys

from torch.distributed import run
from torch.distributed.elastic.multiprocessing import api

_from_str = api.Std.from_str


def _fixed_from_str(vm: str):
    got = _from_str(vm)
    if got is None:
        return api.Std.NONE
    if isinstance(got, dict):
        return {k: api.Std.NONE if v is None else v for k, v in got.items()}
    return got


api.Std.from_str = staticmethod(_fixed_from_str)

if __name__ == "__main__":
    sys.exit(run.main())
