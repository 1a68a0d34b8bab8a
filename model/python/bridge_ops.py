"""The custom ops that exported TorchScript calls and the C++ bridge implements (cbridge/*.cpp).

  * dialogbot::linear_w8 (cbridge/linear_w8.cpp): int8 exports' Linear layers. Its reference
    kernel is int8._reference, registered by int8.py.
  * dialogbot::attend_one (cbridge/attend.cpp): a decode step's attention over the cache and the
    new token. Its reference is attend_one_reference below, the ATen ops the bridge replaces.

When the bridge's library was loaded in this process before this module (torch.ops.load_library,
as the probes and the kernel tests do), its kernels run. Otherwise this module defines the ops
with the reference versions, so that Python can trace, check and test an export.
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F

LINEAR_W8 = "linear_w8(Tensor x, Tensor w, Tensor scale, Tensor? bias) -> Tensor"
ATTEND_ONE = (
    "attend_one(Tensor q, Tensor k, Tensor v, Tensor past_k, Tensor past_v, Tensor mask, float scale) -> Tensor"
)

# What masked scores are filled with (gpt2._MASK_VALUE, kMaskValue in cbridge/attend.cpp).
MASK_VALUE = -3.4028234663852886e38


def attend_one_reference(q, k, v, past_k, past_v, mask, scale: float):
    """q, k, v [B,H,1,D] of one new token per row, past_k/past_v [B,H,S,D] the cache, mask
    [B,1,1,S+1] (True: may attend; the last column is the token itself) -> [B,H,1,D].

    The cache is never concatenated with the new key and value (that would copy it every step):
    scores against each part are computed apart and the probabilities split again. For one new
    token the products are element-wise: a batched matmul there is B*H tiny products.
    """
    s = past_k.size(-2)
    past_scores = (q * past_k).sum(-1).unsqueeze(2)
    scores = torch.cat([past_scores, (q * k).sum(-1, keepdim=True)], dim=-1).float() * scale
    scores = scores.masked_fill(mask.logical_not(), MASK_VALUE)
    probs = F.softmax(scores, dim=-1).type_as(v)
    y_past = (probs[..., :s].transpose(-1, -2) * past_v).sum(-2, keepdim=True)
    return y_past + probs[..., s:] * v


def registered(name: str) -> bool:
    try:
        getattr(torch.ops.dialogbot, name)
        return True
    except (AttributeError, RuntimeError):
        return False


def _define() -> Optional[torch.library.Library]:
    have = {name: registered(name) for name in ("linear_w8", "attend_one")}
    if all(have.values()):
        return None  # the bridge's library is loaded: its kernels run
    if any(have.values()):
        raise RuntimeError(
            "the loaded bridge library defines only some of dialogbot's ops "
            f"({', '.join(n for n, ok in have.items() if ok)}): rebuild it (make build)"
        )
    lib = torch.library.Library("dialogbot", "DEF")
    lib.define(LINEAR_W8)
    lib.define(ATTEND_ONE)
    # Every device (training machines trace and test on CUDA too).
    lib.impl("attend_one", attend_one_reference, "CompositeExplicitAutograd")
    return lib


# Python's definition of the namespace (None when the bridge defined it). Kept referenced: the
# registrations live as long as this object.
LIB = _define()
