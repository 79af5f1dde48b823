"""One process of a two-process gloo training (tests/test_trainer.py starts two of these).

argv: rank world_size rendezvous_file model_ids out_prefix [plain]
(model_ids comma-separated; each model's weights go to ``<out_prefix>-<model>.safetensors``)
With ``plain`` the trainer runs without DistributedDataParallel but still on its own share of
each batch, which is what aelab did before its steps went through a module's forward: the test
checks that the weights then differ, so its equality check can fail.
"""

from __future__ import annotations

import json
import sys

import torch
import torch.distributed as dist
from safetensors.torch import save_file

from aelab.callbacks import Callback
from aelab.data import load_data
from aelab.distributed import DistributedDataParallel, SingleProcess
from aelab.plugins import get_model
from aelab.train import Trainer

CONFIG = {"epochs": 2, "batch_size": 64, "seed": 3, "val_fraction": 0.25, "device": "cpu"}


def params_of(model_id: str) -> dict:
    """The hyperparameters each model trains with here (also the test's one-process run)."""
    return {"code_size": 8} if model_id != "gan" else {"code_size": 8, "noise": 0.1}


class StepLosses(Callback):
    """Every step's loss terms, as the trainer reports them (averaged over processes)."""

    def __init__(self) -> None:
        self.rows: list[dict] = []

    def on_step(self, trainer, event) -> None:
        self.rows.append(event.losses)


class _ShardOnly(SingleProcess):
    """Each process takes its share of a batch (the base class's sampler does that from rank
    and world size) but nothing synchronises the gradients or the batch statistics."""

    def __init__(self, rank: int, world: int):
        self.rank, self.world_size = rank, world


def main() -> None:
    rank, world, rendezvous, model_ids, out = sys.argv[1:6]
    plain = len(sys.argv) > 6 and sys.argv[6] == "plain"
    rank, world = int(rank), int(world)
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{rendezvous}", rank=rank, world_size=world)
    data = load_data("digits").subset(slice(0, 256))
    for model_id in model_ids.split(","):
        strategy = _ShardOnly(rank, world) if plain else DistributedDataParallel()
        steps = StepLosses()
        trainer = Trainer(
            get_model(model_id),
            params_of(model_id),
            data,
            CONFIG,
            save=False,
            strategy=strategy,
            callbacks=[steps],
        )
        done = trainer.fit()
        assert done.status == "completed", done.message
        # Weights only: batch-norm running statistics are per process between DDP's broadcasts.
        state = {k: v.detach().contiguous().clone() for k, v in trainer.model.named_parameters()}
        save_file(state, f"{out}-{model_id}.safetensors")
        with open(f"{out}-{model_id}.json", "w") as f:
            json.dump({"steps": steps.rows, "history": trainer.history}, f)
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
