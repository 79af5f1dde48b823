"""Callbacks: everything around training that is not training (saving, printing, logging).

A callback is any object with some of these methods; each gets the trainer and the event::

    on_start(trainer, Start)   on_step(trainer, Step)   on_epoch(trainer, Epoch)
    on_end(trainer, Done)      close(trainer)           # close: always, last, even on errors

``Trainer(..., callbacks=[...])`` calls them in order; the trainer adds :class:`SaveRun`
itself when saving is on.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any, TextIO

from .events import Done, Epoch, Start, Step


class Callback:
    """A base with every hook doing nothing; subclass and override what you need."""

    def on_start(self, trainer: Any, event: Start) -> None:
        """Training is about to start."""

    def on_step(self, trainer: Any, event: Step) -> None:
        """A step finished (every ``step_every`` steps)."""

    def on_epoch(self, trainer: Any, event: Epoch) -> None:
        """An epoch finished and was validated."""

    def on_end(self, trainer: Any, event: Done) -> None:
        """Training ended, however it ended (completed, stopped, diverged, interrupted)."""

    def close(self, trainer: Any) -> None:
        """Release what the callback holds; called last, also after an error."""


def torch_threads() -> int:
    """The threads torch computes with in this process."""
    import torch

    return torch.get_num_threads()


class SaveRun(Callback):
    """Holds the run's lock while it trains and saves it, all-or-nothing, when training ends."""

    def __init__(self) -> None:
        self.lock: Any = None
        self.created = False

    def on_start(self, trainer: Any, event: Start) -> None:
        from . import runs

        folder = Path(trainer.run_dir)
        self.created = not folder.exists()
        self.lock = runs.lock_run(folder)

    def on_end(self, trainer: Any, event: Done) -> None:
        from . import runs

        trainer.model.eval()
        start = trainer.prepare()  # how it trained: recorded beside what it trained
        details: dict[str, Any] = {
            "trained_with": {
                "device": start.device,
                "processes": start.processes,
                "data": "streamed" if start.streamed else "memory",
                "reader_processes": start.workers,
                "precision": start.precision,
                "memory_format": start.memory_format,
                "threads": torch_threads(),
                "allocator": getattr(trainer, "allocator", ""),
            }
        }
        if event.diverged_at:
            details["diverged_at"] = event.diverged_at
        folder = runs.save_run(
            trainer.run_id,
            trainer.spec,
            trainer.params,
            trainer.config,
            trainer.model,
            trainer.optimizers,
            trainer.history,
            trainer.data.meta(),
            folder=Path(trainer.run_dir),
            status=event.status,
            details=details,
        )
        event.run_dir = trainer.run_dir = str(folder)
        self.created = False

    def close(self, trainer: Any) -> None:
        if self.lock is not None:
            self.lock.release()
            self.lock = None
        if self.created:  # nothing was saved: leave no empty run folder behind
            folder = Path(trainer.run_dir)
            for leftover in folder.glob(".*lock"):
                leftover.unlink(missing_ok=True)
            try:
                folder.rmdir()
            except OSError:
                pass


def fmt_values(values: dict[str, float]) -> str:
    """``name value`` pairs for a line of text."""
    return "  ".join(f"{k} {v:.5g}" for k, v in values.items())


def _columns(stream: Any) -> int:
    """The width of the terminal ``stream`` writes to; 0 when it is none or reports none."""
    try:
        return os.get_terminal_size(stream.fileno()).columns
    except (AttributeError, OSError, ValueError):
        return 0


def start_line(event: Start, data_name: str) -> str:
    """What is about to train, on what, how and where: the CLI's first line."""
    how = [event.data_path()]
    if event.processes > 1:
        how.append(f"{event.processes} processes")
    if event.precision != "fp32":
        how.append(f"{event.precision} mixed precision")
    return (
        f"Training {event.model_id} on {data_name} ({event.n_train} train, {event.n_val} "
        f"validation; {', '.join(how)}) on {event.device}, {event.n_params:,} parameters"
    )


def epoch_line(event: Epoch) -> str:
    """One epoch in a line: losses, validation loss, steady speed, then the metrics apart."""
    val = event.val_losses.get("total")
    val_txt = f"  val {val:.5g}" if val is not None else ""
    metrics = {**event.metrics, **{f"val {k}": v for k, v in event.val_metrics.items()}}
    metric_txt = f"  | {fmt_values(metrics)}" if metrics else ""
    return (
        f"epoch {event.epoch}/{event.epochs}  {fmt_values(event.losses)}{val_txt}  "
        f"{event.epoch_samples_per_s:,.0f} samples/s{metric_txt}"
    )


class TqdmProgress(Callback):
    """A tqdm progress bar over the training's steps, the latest losses beside it, and a line
    kept per epoch above it. ``tqdm.auto`` picks the form: a widget in a notebook, a text bar
    in a terminal (the CLI's bar, on stderr). Where the stream is not a terminal (a log file,
    a pipe) the bar is left out and only the epoch lines are written.

    ``header=True`` (the CLI) first prints what is about to train; ``tqdm_options`` go to
    ``tqdm`` (``leave``, ``ncols``, ...).
    """

    def __init__(
        self,
        stream: TextIO | None = None,
        data_name: str = "",
        header: bool = False,
        **tqdm_options: Any,
    ):
        self.stream = stream
        self.data_name = data_name
        self.header = header
        self.options = tqdm_options
        self.bar: Any = None

    def _out(self) -> TextIO:
        return self.stream or sys.stderr

    def on_start(self, trainer: Any, event: Start) -> None:
        from tqdm.auto import tqdm

        name = self.data_name or trainer.data.name
        if self.header:
            print(start_line(event, name), file=self._out(), flush=True)
        total = max(event.epochs * event.steps_per_epoch, 1)
        out = self._out()
        # A terminal that reports no size (a bare pseudo-terminal) would get a bar 0 wide.
        size = {"dynamic_ncols": True} if _columns(out) > 0 else {"ncols": 100}
        options = {"file": out, **size, **self.options}
        if "disable" not in options:  # no bar in a log file; always one in a notebook
            in_notebook = tqdm.__module__.startswith("tqdm.notebook")
            options["disable"] = not (in_notebook or getattr(options["file"], "isatty", bool)())
        self.bar = tqdm(total=total, desc=f"{event.model_id} on {name}", unit="step", **options)

    def on_step(self, trainer: Any, event: Step) -> None:
        if self.bar is not None:
            self.bar.set_postfix_str(fmt_values(event.losses), refresh=False)
            self.bar.update(trainer.step_every or 1)

    def on_epoch(self, trainer: Any, event: Epoch) -> None:
        if self.bar is not None:
            self.bar.write(epoch_line(event), file=self._out())

    def close(self, trainer: Any) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


class JsonLines(Callback):
    """One JSON object per event on a stream (``aelab train --json``); Done is left to the
    caller, which prints the summary once the run is saved."""

    def __init__(self, stream: TextIO | None = None):
        self.stream = stream or sys.stdout

    def _write(self, event: Any) -> None:
        row = {"event": type(event).__name__.lower(), **vars(event)}
        self.stream.write(json.dumps(row, default=str) + "\n")
        self.stream.flush()

    on_start = on_step = on_epoch = lambda self, trainer, event: self._write(event)  # noqa: E731
