"""Micro-batches for fine-tuning: which examples go together, and their tensors.

Two layouts, both a pure function of (seed, epoch) so a resumed run sees the
same batches:

  * bucket: examples of similar length share a batch, right-padded to the
    longest (the layout finetune.py always had); batches hold at most
    batch_tokens padded tokens.
  * pack: examples in random order fill batches of at most batch_tokens real
    tokens; inside a batch they are packed first-fit-decreasing into rows as
    long as its longest example. Position ids restart at every example and a
    block-diagonal causal mask keeps examples from attending to each other,
    so an example's loss is what it would be alone; only the padding is gone.

Either way a Batch carries the flat indices of the positions that predict a
target (position j-1 for a target at j) and the target ids, so the loss is
computed from those hidden states only.
"""

from typing import List, NamedTuple, Optional

import numpy as np
import torch

from dataset_io import Split

BUCKET = 16  # examples whose lengths differ by less than this may share a bucket batch in any order
LAYOUTS = ("pack", "bucket")


class Batch(NamedTuple):
    ids: torch.Tensor  # int64 [B,T]
    positions: Optional[torch.Tensor]  # int64 [B,T]; None: 0..T-1 in every row
    segments: Optional[torch.Tensor]  # int64 [B,T] example number within its row; None: one per row
    src: torch.Tensor  # int64 [N] flat index (row * T + position) of the positions that predict...
    labels: torch.Tensor  # int64 [N] ...these target ids
    tokens: int  # real (non-pad) tokens
    targets: int  # N, known without asking the device

    def to(self, device) -> "Batch":
        pin = torch.device(device).type == "cuda"

        def mv(t):
            if t is None:
                return None
            # From pinned memory the copy is asynchronous: the host builds the next batch meanwhile.
            return (t.pin_memory() if pin else t).to(device, non_blocking=True)
        return Batch(mv(self.ids), mv(self.positions), mv(self.segments), mv(self.src), mv(self.labels),
                     self.tokens, self.targets)


def make_batches(lengths: np.ndarray, batch_tokens: int, batch_size: int,
                 rng: Optional[np.random.Generator]) -> List[np.ndarray]:
    """Groups example indices into micro-batches of similar length (the bucket layout).

    Sorting by length keeps padding small; with an rng, examples are shuffled
    inside each length bucket and the batch order is shuffled, so every epoch
    differs while staying a pure function of (seed, epoch). A single example
    longer than batch_tokens forms its own batch.
    """
    order = np.arange(len(lengths)) if rng is None else rng.permutation(len(lengths))
    key = lengths[order] if rng is None else lengths[order] // BUCKET
    order = order[np.argsort(key, kind="stable")]
    batches, cur, longest = [], [], 0
    for i in order:
        n = max(longest, int(lengths[i]))
        if cur and (n * (len(cur) + 1) > batch_tokens or (batch_size and len(cur) >= batch_size)):
            batches.append(np.array(cur))
            cur, n = [], int(lengths[i])
        cur.append(i)
        longest = n
    if cur:
        batches.append(np.array(cur))
    if rng is not None:
        batches = [batches[j] for j in rng.permutation(len(batches))]
    return batches


def make_packed_batches(lengths: np.ndarray, batch_tokens: int, batch_size: int,
                        rng: Optional[np.random.Generator]) -> List[np.ndarray]:
    """Groups example indices into micro-batches of at most batch_tokens real
    tokens (and batch_size examples, when not 0), in random order with an rng,
    in index order without."""
    order = np.arange(len(lengths)) if rng is None else rng.permutation(len(lengths))
    batches, cur, total = [], [], 0
    for i in order:
        n = int(lengths[i])
        if cur and (total + n > batch_tokens or (batch_size and len(cur) >= batch_size)):
            batches.append(np.array(cur))
            cur, total = [], 0
        cur.append(i)
        total += n
    if cur:
        batches.append(np.array(cur))
    return batches


def pack_rows(lengths: List[int]) -> List[List[int]]:
    """First-fit-decreasing: positions into `lengths`, grouped into rows of
    capacity max(lengths). Deterministic (ties keep input order)."""
    cap = max(lengths)
    rows: List[List[int]] = []
    free: List[int] = []
    for i in sorted(range(len(lengths)), key=lambda j: -lengths[j]):
        for r, f in enumerate(free):
            if lengths[i] <= f:
                rows[r].append(i)
                free[r] -= lengths[i]
                break
        else:
            rows.append([i])
            free.append(cap - lengths[i])
    return rows


def _rows(split: Split, idx: np.ndarray, context: int):
    # Examples longer than the context keep their last tokens, where the target is.
    out = []
    for i in idx:
        ids, mask = split.example(int(i))
        out.append((ids[-context:].astype(np.int64), mask[-context:].astype(bool)))
    return out


def collate_bucket(split: Split, idx: np.ndarray, pad_id: int, context: int) -> Batch:
    """One example per row, right-padded (on the CPU; Batch.to moves it)."""
    rows = _rows(split, idx, context)
    T = max(len(ids) for ids, _ in rows)
    ids_out = np.full((len(rows), T), pad_id, dtype=np.int64)
    tgt = np.zeros((len(rows), T), dtype=bool)
    for b, (ids, mask) in enumerate(rows):
        ids_out[b, : len(ids)] = ids
        tgt[b, 1: len(mask)] = mask[1:]  # a target at position 0 has no context
    return _finish(ids_out, None, None, tgt, sum(len(ids) for ids, _ in rows))


def collate_packed(split: Split, idx: np.ndarray, pad_id: int, context: int) -> Batch:
    """Examples packed into rows as long as the longest (see pack_rows); padding
    at the end of a row is its own segment, so no example attends to it."""
    rows = _rows(split, idx, context)
    packing = pack_rows([len(ids) for ids, _ in rows])
    T = max(len(ids) for ids, _ in rows)
    ids_out = np.full((len(packing), T), pad_id, dtype=np.int64)
    pos = np.zeros((len(packing), T), dtype=np.int64)
    seg = np.zeros((len(packing), T), dtype=np.int64)
    tgt = np.zeros((len(packing), T), dtype=bool)
    for r, members in enumerate(packing):
        at = 0
        for s, k in enumerate(members, start=1):
            ids, mask = rows[k]
            n = len(ids)
            ids_out[r, at: at + n] = ids
            pos[r, at: at + n] = np.arange(n)
            seg[r, at: at + n] = s
            tgt[r, at + 1: at + n] = mask[1:]
            at += n
    return _finish(ids_out, pos, seg, tgt, sum(len(ids) for ids, _ in rows))


def _finish(ids: np.ndarray, pos, seg, tgt: np.ndarray, tokens: int) -> Batch:
    rows, cols = np.nonzero(tgt)
    T = ids.shape[1]
    src = rows * T + cols - 1
    labels = ids[rows, cols]
    t = torch.from_numpy
    return Batch(t(ids), None if pos is None else t(pos), None if seg is None else t(seg),
                 t(src.astype(np.int64)), t(labels.astype(np.int64)), tokens, len(labels))


def batcher(layout: str):
    """(make_batches, collate) of a layout."""
    if layout == "pack":
        return make_packed_batches, collate_packed
    if layout == "bucket":
        return make_batches, collate_bucket
    raise ValueError(f"unknown batch layout {layout!r} (want one of {LAYOUTS})")
