"""What a training reports as it goes: Start, Step, Epoch and Done events, and the Stop signal.

The trainer sends every event to its callbacks and yields it; the CLI, the lab and a notebook
read the same objects.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Start:
    """Training is about to start."""

    run_id: str
    model_id: str
    device: str
    n_params: int
    n_train: int
    n_val: int
    epochs: int
    steps_per_epoch: int
    streamed: bool = False  # read from disk batch by batch, not held in memory
    workers: int = 0  # processes reading streamed data
    processes: int = 1  # training processes (torchrun)
    precision: str = "fp32"
    memory_format: str = "contiguous"  # of the weights: channels_last or contiguous

    def data_path(self) -> str:
        """How the data reaches the model, in words."""
        if not self.streamed:
            return "held in memory"
        readers = f"{self.workers} reader process{'es' if self.workers != 1 else ''}"
        return f"streamed from disk by {readers}" if self.workers else "streamed from disk"


@dataclass
class Step:
    """One optimisation step (every optimizer the model declares) finished."""

    epoch: int
    step: int  # global step
    losses: dict[str, float]
    samples_per_s: float
    elapsed: float
    metrics: dict[str, float] = field(default_factory=dict)


@dataclass
class Epoch:
    """One pass over the training data finished."""

    epoch: int
    epochs: int
    losses: dict[str, float]  # mean over the epoch's steps
    val_losses: dict[str, float]
    samples_per_s: float
    elapsed: float
    metrics: dict[str, float] = field(default_factory=dict)  # not losses: never summed in
    val_metrics: dict[str, float] = field(default_factory=dict)
    # samples_per_s is over the whole training so far; this epoch's own speed shows steady
    # speed (a first epoch pays for warm-up: allocation, page faults, compilation).
    epoch_samples_per_s: float = 0.0


@dataclass
class Done:
    """Training ended: completed, stopped, interrupted, or halted by a non-finite loss."""

    run_id: str
    run_dir: str | None
    losses: dict[str, float]
    val_losses: dict[str, float]
    samples_per_s: float
    elapsed: float
    epochs_done: int
    status: str  # completed | stopped | diverged | interrupted
    message: str = ""
    model: Any = field(default=None, repr=False)
    metrics: dict[str, float] = field(default_factory=dict)
    val_metrics: dict[str, float] = field(default_factory=dict)
    diverged_at: dict[str, Any] | None = None


Event = Start | Step | Epoch | Done


class StopSignal:
    """A cooperative stop: set it from any thread; the trainer stops after the current step."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def set(self) -> None:
        """Ask training to stop."""
        self._event.set()

    def clear(self) -> None:
        """Allow a new training to run."""
        self._event.clear()

    def is_set(self) -> bool:
        """Whether a stop was asked for."""
        return self._event.is_set()
