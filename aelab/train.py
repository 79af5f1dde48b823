"""The generic trainer: steps whatever optimizers a model declares and yields progress events."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from .errors import ParamsError, TrainingError
from .models import Model, ModelSpec
from .params import Params, TrainConfig, validate


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


@dataclass
class Step:
    """One optimisation step (every optimizer the model declares) finished."""

    epoch: int
    step: int  # global step
    losses: dict[str, float]
    samples_per_s: float
    elapsed: float


@dataclass
class Epoch:
    """One pass over the training data finished."""

    epoch: int
    epochs: int
    losses: dict[str, float]  # mean over the epoch's steps
    val_losses: dict[str, float]
    samples_per_s: float
    elapsed: float


@dataclass
class Done:
    """Training ended: completed, stopped, or halted by a non-finite loss."""

    run_id: str
    run_dir: str | None
    losses: dict[str, float]
    val_losses: dict[str, float]
    samples_per_s: float
    elapsed: float
    epochs_done: int
    status: str  # completed | stopped | diverged
    message: str = ""
    model: Any = field(default=None, repr=False)


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


def pick_device(requested: str = "auto") -> torch.device:
    """CUDA, then Apple MPS, then CPU; an explicit choice must be available."""
    cuda = torch.cuda.is_available()
    mps = getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    if requested == "auto":
        return torch.device("cuda" if cuda else "mps" if mps else "cpu")
    if requested == "cuda" and not cuda:
        raise ParamsError(
            "Device 'cuda' was asked for but CUDA is not available here; use auto or cpu."
        )
    if requested == "mps" and not mps:
        raise ParamsError(
            "Device 'mps' was asked for but Apple MPS is not available here; use auto or cpu."
        )
    return torch.device(requested)


def seed_everything(seed: int) -> None:
    """Seed torch and numpy so the same seed gives the same losses on CPU."""
    torch.manual_seed(seed)
    np.random.seed(seed % (2**32))


class _Snapshot:
    """The last good weights, to fall back on when a loss turns NaN.

    The copies are made once and refreshed in place each epoch: no allocation per epoch (fresh
    clones cost about 1% of a small model's training time; a deepcopy 10× more).
    """

    def __init__(self, model: Model):
        self.live = model.state_dict()  # detached views that follow the weights as they train
        self.saved = {k: v.clone() for k, v in self.live.items()}

    @torch.no_grad()
    def take(self) -> None:
        for k, v in self.live.items():
            self.saved[k].copy_(v)

    def restore(self, model: Model) -> None:
        model.load_state_dict(self.saved)


def _finite(values: dict[str, float]) -> bool:
    return all(math.isfinite(v) for v in values.values())


def _mean(rows: list[dict[str, float]]) -> dict[str, float]:
    if not rows:
        return {}
    return {k: float(np.mean([r[k] for r in rows if k in r])) for k in rows[0]}


@torch.no_grad()
def evaluate(
    model: Model, x: torch.Tensor, batch_size: int = 1024, y: torch.Tensor | None = None
) -> dict[str, float]:
    """Mean loss terms over ``x`` in eval mode (no noise, no gradients); ``y``: labels, if needed."""
    if len(x) == 0:
        return {}
    was_training = model.training
    model.eval()
    sums: dict[str, float] = {}
    for i in range(0, len(x), batch_size):
        batch = x[i : i + batch_size]
        extra = {} if y is None else {"y": y[i : i + batch_size]}
        for k, v in model.validation_step(batch, **extra).items():
            sums[k] = sums.get(k, 0.0) + float(v) * len(batch)
    model.train(was_training)
    return {k: v / len(x) for k, v in sums.items()}


def train(
    spec: ModelSpec,
    params: Params | dict[str, Any] | None,
    data: Any,
    config: TrainConfig | dict[str, Any] | None = None,
    *,
    resume: Any = None,
    stop: StopSignal | None = None,
    save: bool = True,
    runs_dir: str | None = None,
    step_every: int = 1,
) -> Iterator[Event]:
    """Train ``spec`` on ``data`` and yield Start, Step, Epoch and Done events.

    ``resume`` is a loaded Run whose weights, optimizer state and history carry on. With ``save``
    the run is written to ``runs/<id>/`` when training ends, however it ends.
    """
    from . import runs as runs_mod

    config = (
        config
        if isinstance(config, TrainConfig)
        else validate(TrainConfig, config or {}, "training settings")
    )
    params = spec.validate_params(params if resume is None else resume.params)
    device = pick_device(config.device)
    seed_everything(config.seed)
    train_set, val_set = (
        data.split(config.val_fraction, config.seed) if config.val_fraction > 0 else (data, None)
    )

    model = resume.model if resume is not None else spec.build(params, data.sample_shape, data.kind)
    if resume is not None and tuple(model.sample_shape) != tuple(data.sample_shape):
        raise ParamsError(
            f"This run was trained on samples of shape {list(model.sample_shape)}, "
            f"but the data has shape {list(data.sample_shape)}."
        )
    model.to(device).train()
    optimizers = model.configure_optimizers(config)
    if list(optimizers) != list(model.steps):
        raise TrainingError(
            f"Model '{spec.id}' declares steps {list(model.steps)} but optimizers {list(optimizers)}."
        )
    if resume is not None and resume.optimizer_state:
        runs_mod.load_optimizer_state(optimizers, resume.optimizer_state)

    x_train = torch.as_tensor(train_set.x, dtype=torch.float32, device=device)
    x_val = (
        torch.as_tensor(val_set.x, dtype=torch.float32, device=device)
        if val_set is not None
        else None
    )
    y_train = y_val = None
    if model.needs_labels:  # conditional models get each batch's labels as ``y``
        if data.labels is None:
            raise ParamsError(
                f"Model '{spec.id}' is conditional and needs a label for every sample, but dataset "
                f"'{data.name}' has no labels; use labelled data (e.g. digits, or class sub-folders)."
            )
        y_train = torch.as_tensor(train_set.labels, dtype=torch.long, device=device)
        y_val = (
            torch.as_tensor(val_set.labels, dtype=torch.long, device=device)
            if val_set is not None
            else None
        )
    n = len(x_train)
    bs = min(config.batch_size, n)
    steps_per_epoch = math.ceil(n / bs)
    shuffle = torch.Generator()
    history: list[dict[str, Any]] = list(resume.history) if resume is not None else []
    first_epoch = history[-1]["epoch"] + 1 if history else 1
    # A resumed run continues with new shuffles rather than replaying epoch 1's order.
    shuffle.manual_seed(config.seed + first_epoch - 1)
    run_id = resume.run_id if resume is not None else runs_mod.new_run_id(spec.id)
    n_params = sum(p.numel() for p in model.parameters())

    yield Start(
        run_id,
        spec.id,
        str(device),
        n_params,
        n,
        len(x_val) if x_val is not None else 0,
        config.epochs,
        steps_per_epoch,
    )

    status, message = "completed", ""
    good_state = _Snapshot(model)
    train_time = 0.0
    seen = 0
    gstep = (first_epoch - 1) * steps_per_epoch
    last_losses: dict[str, float] = {}
    val_losses: dict[str, float] = {}
    epochs_done = 0
    t_start = time.perf_counter()
    step_names = list(optimizers.items())

    def persist(final_status: str) -> str | None:
        """Write the run (weights, optimizer state, history) unless saving is off."""
        if not save:
            return None
        model.eval()
        folder = runs_mod.save_run(
            run_id,
            spec,
            params,
            config,
            model,
            optimizers,
            history,
            data.meta(),
            runs_dir=runs_dir,
            status=final_status,
        )
        return str(folder)

    try:
        for epoch in range(first_epoch, first_epoch + config.epochs):
            perm = torch.randperm(n, generator=shuffle).to(device)
            rows: list[dict[str, float]] = []
            t0 = time.perf_counter()
            for i in range(0, n, bs):
                batch = x_train[perm[i : i + bs]]
                extra = {} if y_train is None else {"y": y_train[perm[i : i + bs]]}
                step_losses: dict[str, float] = {}
                total = 0.0
                model.global_step = gstep
                for name, opt in step_names:
                    opt.zero_grad(set_to_none=True)
                    terms = model.training_step(batch, name, **extra)
                    loss = terms["loss"]
                    value = float(loss.detach())
                    if not math.isfinite(value):
                        status = "diverged"
                        break
                    loss.backward()
                    opt.step()
                    total += value
                    for k, v in terms.items():
                        if k != "loss":
                            # One sync per distinct tensor: a lone term is the loss itself.
                            step_losses[k] = value if v is loss else float(v.detach())
                if status == "diverged":
                    bad = [k for k, v in terms.items() if not math.isfinite(float(v.detach()))]
                    message = (
                        f"Training stopped at epoch {epoch}, step {gstep + 1}: the {', '.join(bad) or 'loss'} "
                        "loss became NaN or infinite; the last good weights were kept. "
                        "Try a lower learning rate."
                    )
                    break
                step_losses["total"] = total
                rows.append(step_losses)
                gstep += 1
                seen += len(batch)
                if step_every and gstep % step_every == 0:
                    elapsed_train = train_time + time.perf_counter() - t0
                    yield Step(
                        epoch,
                        gstep,
                        step_losses,
                        seen / max(elapsed_train, 1e-9),
                        time.perf_counter() - t_start,
                    )
                if stop is not None and stop.is_set():
                    status = "stopped"
                    message = f"Training stopped by request during epoch {epoch}."
                    break
            train_time += time.perf_counter() - t0
            if status == "diverged":
                if not all(torch.isfinite(p).all() for p in model.parameters()):
                    good_state.restore(model)
                break
            if rows:
                last_losses = _mean(rows)
                val_losses = evaluate(model, x_val, y=y_val) if x_val is not None else {}
                if not _finite(last_losses) or not _finite(val_losses):
                    status = "diverged"
                    message = (
                        f"Training stopped after epoch {epoch}: the loss became NaN or infinite; "
                        "the last good weights were kept. Try a lower learning rate."
                    )
                    good_state.restore(model)
                    break
                good_state.take()
                epochs_done += 1
                sps = seen / max(train_time, 1e-9)
                history.append(
                    {
                        "epoch": epoch,
                        "losses": last_losses,
                        "val_losses": val_losses,
                        "samples_per_s": sps,
                        "elapsed": time.perf_counter() - t_start,
                    }
                )
                yield Epoch(
                    epoch,
                    first_epoch + config.epochs - 1,
                    last_losses,
                    val_losses,
                    sps,
                    time.perf_counter() - t_start,
                )
            if status == "stopped":
                break

    except (GeneratorExit, KeyboardInterrupt):
        # The consumer went away (a closed browser tab, Ctrl-C): keep what was learned so far.
        if not all(torch.isfinite(p).all() for p in model.parameters()):
            good_state.restore(model)
        persist("interrupted")
        raise

    model.eval()
    run_dir = persist(status)
    yield Done(
        run_id,
        run_dir,
        last_losses,
        val_losses,
        seen / max(train_time, 1e-9),
        time.perf_counter() - t_start,
        epochs_done,
        status,
        message,
        model,
    )
