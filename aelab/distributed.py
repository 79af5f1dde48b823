"""How many processes train: one (the default) or several under torch.distributed.

The trainer asks its strategy four things: which device, how to wrap the step module, which
share of a batch this process takes, and whether a loss is finite everywhere. Nothing else in
aelab knows how many processes there are.
"""

from __future__ import annotations

import math
import os
from typing import Any

import torch
from torch import nn


class SingleProcess:
    """One process trains on every sample of every batch."""

    rank = 0
    world_size = 1
    distributed = False

    @property
    def is_main(self) -> bool:
        """Whether this process saves runs and reports progress."""
        return self.rank == 0

    def device(self, picked: torch.device) -> torch.device:
        """The device this process trains on."""
        return picked

    def wrap(self, module: nn.Module) -> nn.Module:
        """The module whose forward runs each training step."""
        return module

    def shard(self, idx: torch.Tensor) -> torch.Tensor:
        """This process's share of a global batch's sample indices."""
        return idx

    def all_finite(self, value: float) -> bool:
        """Whether the loss is finite in every process (all must stop together)."""
        return math.isfinite(value)

    def noise_seed(self, seed: int) -> int:
        """The seed of this process's training noise."""
        return seed


class DistributedDataParallel(SingleProcess):
    """Several processes (launched by torchrun), gradients averaged by DistributedDataParallel.

    Every process builds the same initial weights (DDP also broadcasts rank 0's), shuffles with
    the same seed and takes every ``world_size``-th sample of each global batch, and draws its
    own noise.
    """

    distributed = True

    def __init__(self) -> None:
        import torch.distributed as dist

        if not dist.is_initialized():
            backend = "nccl" if torch.cuda.is_available() else "gloo"
            dist.init_process_group(backend)
        self.dist = dist
        self.rank = dist.get_rank()
        self.world_size = dist.get_world_size()
        self.local_rank = int(os.environ.get("LOCAL_RANK", self.rank))

    def device(self, picked: torch.device) -> torch.device:
        if picked.type == "cuda":
            torch.cuda.set_device(self.local_rank % torch.cuda.device_count())
            return torch.device("cuda", torch.cuda.current_device())
        return picked

    def wrap(self, module: nn.Module) -> nn.Module:
        from torch.nn.parallel import DistributedDataParallel as DDP

        ids: Any = None
        for p in module.parameters():
            if p.device.type == "cuda":
                ids = [p.device.index]
            break
        # A model with several optimizers leaves some parameters out of some steps (a GAN's
        # generator in the discriminator's step); with one optimizer every parameter takes part.
        steps = getattr(getattr(module, "model", None), "steps", ())
        return DDP(module, device_ids=ids, find_unused_parameters=len(steps) > 1)

    def shard(self, idx: torch.Tensor) -> torch.Tensor:
        return idx[self.rank :: self.world_size]

    def all_finite(self, value: float) -> bool:
        flag = torch.tensor([1.0 if math.isfinite(value) else 0.0])
        if self.dist.get_backend() == "nccl":
            flag = flag.cuda()
        self.dist.all_reduce(flag, op=self.dist.ReduceOp.MIN)
        return bool(flag.item() > 0)

    def noise_seed(self, seed: int) -> int:
        # Each process corrupts its own samples: the same noise on every rank would be a
        # smaller effective batch of noise.
        return seed + 1_000_003 * self.rank


def pick_strategy() -> SingleProcess:
    """DistributedDataParallel when a process group is running or torchrun started us."""
    import torch.distributed as dist

    if dist.is_available() and (dist.is_initialized() or int(os.environ.get("WORLD_SIZE", 1)) > 1):
        return DistributedDataParallel()
    return SingleProcess()
