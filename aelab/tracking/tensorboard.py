"""TensorBoard logging (``aelab train --log tensorboard``; needs ``pip install 'aelab[tensorboard]'``).

Writes, with torch's ``SummaryWriter``, into ``<run folder>/tensorboard`` (or
``<log_dir>/<run id>``): every loss term and metric per epoch, training and validation; the loss
terms at the trainer's event rate; samples/s; the reconstruction grid (generated samples for a
model that cannot reconstruct) as an image each epoch; the hyperparameters, for TensorBoard's
HParams and Text tabs. ``tensorboard --logdir runs`` then shows every run of the runs folder.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from ..callbacks import Callback
from ..events import Done, Epoch, Start, Step
from ..hookspecs import hookimpl
from . import Tracker, epoch_scalars, hyperparameters

log = logging.getLogger("aelab.tracking")
PREVIEW_N = 8  # samples in the logged picture (as many as the lab's live grid)


def preview_batch(trainer: Any, n: int = PREVIEW_N) -> np.ndarray:
    """A fixed handful of held-out samples (training samples when nothing is held out)."""
    config, data = trainer.config, trainer.data
    part = data.split(config.val_fraction, config.seed)[1] if config.val_fraction > 0 else data
    if getattr(part, "streamed", False):  # on disk: read just these into memory
        return np.asarray(part.head(n).x)
    return np.asarray(part.x[:n])


def picture(model: Any, x: np.ndarray, data: Any = None) -> tuple[str, np.ndarray] | None:
    """The lab's live picture and its name: originals against reconstructions (a series along
    its time axis), or real against generated samples for a model that only generates; None
    for a model that does neither. An (H, W, 3) uint8 image."""
    from .. import inspect as ins
    from ..series import is_series, series_picture

    caps = getattr(model, "capabilities", frozenset())
    was = model.training
    try:  # drawing uses generators of its own, never the training's, and leaves the mode be
        if "reconstruct" in caps and is_series(data):
            return "reconstruction", series_picture(model, data)
        if "reconstruct" in caps:
            names = getattr(data, "feature_names", None)
            return "reconstruction", ins.reconstruction_grid(model, x, names=names)
        if "sample" in caps:
            fake = ins.samples(model, len(x))
            return "samples", ins.image_grid([x, fake], ["real", "generated"], flat="gallery")
        return None
    finally:
        model.train(was)


class TensorBoardLogger(Callback):
    """Logs a training to TensorBoard event files; ``log_dir`` puts them in
    ``<log_dir>/<run id>`` instead of the run's own folder, ``images=False`` leaves out the
    picture, ``steps=False`` the per-step losses."""

    def __init__(self, log_dir: str | None = None, images: bool = True, steps: bool = True):
        self.log_dir = log_dir
        self.images = images
        self.steps = steps
        self.writer: Any = None
        self.preview: np.ndarray | None = None
        self.folder: Path | None = None

    def on_start(self, trainer: Any, event: Start) -> None:
        from torch.utils.tensorboard import SummaryWriter
        from torch.utils.tensorboard.summary import hparams

        base = Path(self.log_dir) / trainer.run_id if self.log_dir else None
        self.folder = base or Path(trainer.run_dir) / "tensorboard"
        self.writer = SummaryWriter(log_dir=str(self.folder))
        settings = hyperparameters(trainer)
        # In this run, not in the sub-run add_hparams would make: the HParams tab then finds the
        # curves it names beside the settings.
        tags = {"loss/total": 0.0, **({"val_loss/total": 0.0} if event.n_val else {})}
        for summary in hparams(settings, tags):
            self.writer.file_writer.add_summary(summary)
        rows = "\n".join(f"| {k} | {v} |" for k, v in settings.items())
        about = (
            f"{event.model_id} on {trainer.data.name}: {event.n_train} training and "
            f"{event.n_val} validation samples, {event.n_params:,} parameters, {event.device}"
        )
        self.writer.add_text(
            "hyperparameters", f"{about}\n\n| setting | value |\n|---|---|\n{rows}", 0
        )
        if self.images:
            try:
                self.preview = preview_batch(trainer)
            except Exception:  # a picture must never cost the training
                log.exception("TensorBoard: no preview batch")
                self.preview = None
        self.writer.flush()

    def on_step(self, trainer: Any, event: Step) -> None:
        if not self.steps or self.writer is None:
            return
        for k, v in event.losses.items():
            self.writer.add_scalar(f"step_loss/{k}", v, event.step)
        for k, v in event.metrics.items():
            self.writer.add_scalar(f"step_metric/{k}", v, event.step)

    def on_epoch(self, trainer: Any, event: Epoch) -> None:
        if self.writer is None:
            return
        for tag, value in epoch_scalars(event).items():
            self.writer.add_scalar(tag, value, event.epoch)
        if self.preview is not None:
            try:
                drawn = picture(trainer.model, self.preview, trainer.data)
            except Exception:
                log.exception("TensorBoard: the picture failed")
                drawn, self.preview = None, None
            if drawn is not None:
                name, image = drawn
                self.writer.add_image(f"images/{name}", image, event.epoch, dataformats="HWC")
        self.writer.flush()  # each epoch shows as soon as it ends

    def on_end(self, trainer: Any, event: Done) -> None:
        if self.writer is None:
            return
        status = f"{event.status}: {event.message}" if event.message else event.status
        last = trainer.history[-1]["epoch"] if trainer.history else 0
        self.writer.add_text("status", status, last)
        self.writer.flush()

    def close(self, trainer: Any) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


@hookimpl
def register_trackers(register: Any) -> None:
    register(
        Tracker(
            name="tensorboard",
            label="TensorBoard",
            description="TensorBoard event files in the run's folder (tensorboard/): loss "
            "terms, metrics, the reconstruction grid and the hyperparameters",
            make=TensorBoardLogger,
            requires=("tensorboard",),
            install="pip install 'aelab[tensorboard]'",
        )
    )
