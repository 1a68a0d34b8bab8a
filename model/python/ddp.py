"""torch.distributed for finetune.py: one process per device under torchrun.

    torchrun --nproc_per_node 2 model/python/finetune.py ...   (or python -m torch.distributed.run)

torchrun sets RANK, WORLD_SIZE and LOCAL_RANK; without them (a plain
`python finetune.py`) everything here is a single-process no-op. The backend
is NCCL on CUDA and gloo on the CPU.
"""

import os
from typing import NamedTuple

import torch
import torch.distributed as dist


class World(NamedTuple):
    rank: int
    size: int
    local_rank: int

    @property
    def enabled(self) -> bool:
        return self.size > 1

    @property
    def main(self) -> bool:
        """The one process that writes files and progress."""
        return self.rank == 0


SINGLE = World(0, 1, 0)


def from_env() -> World:
    """The process's place in a torchrun job (SINGLE outside one)."""
    try:
        size = int(os.environ.get("WORLD_SIZE", "1"))
        rank = int(os.environ.get("RANK", "0"))
        local = int(os.environ.get("LOCAL_RANK", "0"))
    except ValueError as e:
        raise ValueError(f"bad torchrun environment (RANK/WORLD_SIZE/LOCAL_RANK): {e}") from None
    if size < 1 or not 0 <= rank < size:
        raise ValueError(f"bad torchrun environment: RANK {rank}, WORLD_SIZE {size}")
    return World(rank, size, local)


def init(world: World, device: torch.device) -> None:
    """Joins the process group (MASTER_ADDR/MASTER_PORT come from torchrun)."""
    if not world.enabled or dist.is_initialized():
        return
    backend = "nccl" if device.type == "cuda" else "gloo"
    dist.init_process_group(backend=backend, rank=world.rank, world_size=world.size)


def shutdown(world: World) -> None:
    if world.enabled and dist.is_initialized():
        dist.destroy_process_group()


def sum_(t: torch.Tensor, world: World, async_op: bool = False):
    """In-place sum over all processes; with async_op, a handle to wait on (None when single)."""
    if not world.enabled:
        return None
    work = dist.all_reduce(t, op=dist.ReduceOp.SUM, async_op=async_op)
    return work if async_op else None


def any_(flag: bool, world: World, device: torch.device) -> bool:
    """True when any process says True (every process must call it at the same point)."""
    if not world.enabled:
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())


def barrier(world: World) -> None:
    if world.enabled:
        dist.barrier()
