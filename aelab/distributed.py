"""How many processes train: one (the default) or several under torch.distributed.

The trainer asks its strategy which device, how to wrap the step module, which samples this
process takes each epoch, and how to combine the figures of all processes. Nothing else in aelab
knows how many processes there are.

Several processes reproduce one process of the same global batch: every rank shuffles with the
same seed (a ``DistributedSampler``, so rank ``r`` of ``w`` takes every ``w``-th sample of each
global batch), draws the global batch's noise and keeps its own rows, normalises batches over
the global batch (synchronised batch norm) and averages gradients (DistributedDataParallel).
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn
from torch.utils.data import DistributedSampler

from .errors import ParamsError


class EpochBatches:
    """The batches of sample indices this process trains on in one epoch (a batch sampler).

    A ``DistributedSampler`` orders the samples: with one process it is a seeded
    ``randperm`` per epoch; with ``w`` processes each takes every ``w``-th index of the same
    permutation (padded to a multiple of ``w``), so its i-th batch of ``B / w`` indices is its
    share of the one-process run's i-th batch of ``B``.
    """

    def __init__(self, n: int, batch_size: int, seed: int, rank: int = 0, world_size: int = 1):
        self.sampler = DistributedSampler(
            range(n), num_replicas=world_size, rank=rank, shuffle=True, seed=seed
        )
        self.batch_size = batch_size

    def set_epoch(self, epoch: int) -> None:
        """Shuffle for ``epoch`` (the same order on every rank, another one every epoch)."""
        self.sampler.set_epoch(epoch)

    def __iter__(self) -> Iterator[list[int]]:
        order = list(self.sampler)
        b = self.batch_size
        return (order[i : i + b] for i in range(0, len(order), b))

    def __len__(self) -> int:
        return math.ceil(len(self.sampler) / self.batch_size)


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

    def prepare(self, model: nn.Module) -> None:
        """Make the model train as one model across processes (nothing to do in one)."""

    def wrap(self, module: nn.Module) -> nn.Module:
        """The module whose forward runs each training step."""
        return module

    def batch_sampler(self, n: int, batch_size: int, seed: int) -> EpochBatches:
        """This process's batches of a global batch of ``batch_size``, shuffled by ``seed``."""
        if batch_size % self.world_size:
            raise ParamsError(
                f"The batch size {batch_size} does not split evenly across {self.world_size} "
                f"processes; use a multiple of {self.world_size}."
            )
        return EpochBatches(n, batch_size // self.world_size, seed, self.rank, self.world_size)

    def val_share(self, n: int) -> range:
        """The validation samples this process evaluates."""
        return range(self.rank, n, self.world_size)

    def sum(self, values: torch.Tensor) -> torch.Tensor:
        """``values`` summed over processes (a 1-D float tensor)."""
        return values

    def mean(self, values: torch.Tensor) -> torch.Tensor:
        """``values`` averaged over processes (a 1-D float tensor)."""
        return self.sum(values) / self.world_size

    def noise_seed(self, seed: int) -> int:
        """The seed of this process's training noise (the same on every rank, see above)."""
        return seed


class DistributedDataParallel(SingleProcess):
    """Several processes (launched by torchrun), gradients averaged by DistributedDataParallel;
    ``nccl`` on CUDA, ``gloo`` on the CPU."""

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

    def prepare(self, model: nn.Module) -> None:
        # Batch norm over the global batch, as one process would compute it; and the noise of
        # the global batch, of which this rank keeps its rows.
        sync_batch_norm(model)
        model.__dict__["_share"] = (self.rank, self.world_size)

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

    def sum(self, values: torch.Tensor) -> torch.Tensor:
        out = values.detach().clone()
        if self.dist.get_backend() == "nccl" and out.device.type != "cuda":
            out = out.cuda()
        self.dist.all_reduce(out)
        return out.to(values.device)


def pick_strategy() -> SingleProcess:
    """DistributedDataParallel when a process group is running or torchrun started us."""
    import torch.distributed as dist

    if dist.is_available() and (dist.is_initialized() or int(os.environ.get("WORLD_SIZE", 1)) > 1):
        return DistributedDataParallel()
    return SingleProcess()


# -- batch norm over the global batch -----------------------------------------------------------


class _SyncedBatchNorm:
    """Batch statistics summed over every process (torch's SyncBatchNorm runs on GPUs only).

    Mixed into a model's own batch-norm classes in place, so parameters, buffers, the
    optimizer's references and the state dict's keys stay as they are; outside distributed
    training it is the plain layer.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        import torch.distributed as dist
        from torch.distributed.nn.functional import all_reduce

        if not (self.training and dist.is_initialized() and dist.get_world_size() > 1):
            return super().forward(x)  # type: ignore[misc]
        c = x.shape[1]
        dims = [0, *range(2, x.dim())]
        count = x.new_full((1,), x.numel() // c)
        stats = all_reduce(torch.cat([x.sum(dims), (x * x).sum(dims), count]))
        n = stats[-1]
        mean = stats[:c] / n
        var = (stats[c : 2 * c] / n - mean * mean).clamp_min(0.0)
        if self.track_running_stats and self.running_mean is not None:
            with torch.no_grad():
                self.num_batches_tracked += 1
                m = self.momentum
                if m is None:  # a cumulative average, as torch's batch norm keeps it
                    m = 1.0 / float(self.num_batches_tracked)
                self.running_mean.lerp_(mean.detach(), m)
                self.running_var.lerp_(var.detach() * n / (n - 1), m)
        shape = [1, c] + [1] * (x.dim() - 2)
        y = (x - mean.view(shape)) * torch.rsqrt(var.view(shape) + self.eps)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        return y


_SYNCED: dict[type, type] = {}


def sync_batch_norm(model: nn.Module) -> int:
    """Make every batch-norm layer of ``model`` normalise over all processes; how many."""
    from torch.nn.modules.batchnorm import _BatchNorm

    count = 0
    for module in model.modules():
        cls = type(module)
        if isinstance(module, _BatchNorm) and not isinstance(module, _SyncedBatchNorm):
            if cls not in _SYNCED:
                _SYNCED[cls] = type(f"Synced{cls.__name__}", (_SyncedBatchNorm, cls), {})
            module.__class__ = _SYNCED[cls]
            count += 1
    return count
