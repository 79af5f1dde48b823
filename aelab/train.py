"""The generic trainer: a Trainer (prepare, step, evaluate, fit) that reports through callbacks.

The trainer knows nothing about what it trains: a model declares its optimizers, the batch
fields it needs and a training step per optimizer; everything that is not training (saving,
printing, the lab's live view, logging) is a callback (``aelab.callbacks``).
"""

from __future__ import annotations

import contextlib
import math
import sys
import time
import types
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np
import torch
from torch import nn

from . import layout, memory
from .distributed import SingleProcess, pick_strategy
from .errors import DataError, ParamsError, TrainingError
from .evaluation import (  # noqa: F401 - re-exported: aelab.train.evaluate is public
    _finite,
    _floats,
    batch_tensors,
    evaluate,
    evaluate_batches,
    evaluate_totals,
)
from .events import Done, Epoch, Event, Start, Step, StopSignal  # noqa: F401 - re-exported
from .feeds import EVAL_BATCH, make_feeds
from .models import METRICS, Model, ModelSpec, build_seeded
from .params import Params, TrainConfig, validate
from .snapshot import Snapshot


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
    """Seed torch's and numpy's global generators (scripts; the trainer itself never uses them)."""
    torch.manual_seed(seed)
    np.random.seed(seed % (2**32))


def mixed_precision(precision: str, device: torch.device) -> tuple[Any, Any]:
    """The autocast context for ``precision`` on ``device`` and its gradient scaler (fp16 only:
    its narrow range needs the loss scaled up so that small gradients do not vanish)."""
    if precision == "fp32":
        return contextlib.nullcontext, None
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    if not torch.amp.autocast_mode.is_autocast_available(device.type):
        raise ParamsError(f"Mixed precision is not available on {device.type}; use fp32.")

    def autocast() -> Any:
        return torch.autocast(device_type=device.type, dtype=dtype)

    scaler = torch.amp.GradScaler(device.type) if precision == "fp16" else None
    return autocast, scaler


def compile_networks(model: Model) -> None:
    """torch.compile each network of the model (its child modules) in place, so parameters
    and state-dict keys stay as they are; the step's loss and bookkeeping stay eager, so nothing
    recompiles as the step count or a schedule changes."""
    for name, child in model.named_children():
        # Module.compile() hands dynamo torch's own ``_call_impl``, a frame it skips (torch
        # 2.13): compile a function of ours that calls it instead.
        child._compiled_call_impl = torch.compile(_caller(child._call_impl, name))


def _caller(call: Any, name: str) -> Any:
    """A function calling ``call``, with a code object of its own: dynamo keeps its compiled
    graphs and its recompile limit per code object, so each network needs its own."""

    def run(*args: Any, **kwargs: Any) -> Any:
        return call(*args, **kwargs)

    run.__code__ = run.__code__.replace(co_name=f"compiled_{name}")
    return run


class StepModule(nn.Module):
    """The module whose forward is one training step, so DistributedDataParallel sees every
    step (it synchronises gradients only through a module's forward)."""

    def __init__(self, model: Model):
        super().__init__()
        self.model = model
        self._training_step = model.training_step  # a plain attribute: no module lookup per step

    def forward(self, batch: dict[str, torch.Tensor], optimizer: str) -> dict[str, Any]:
        return self._training_step(batch, optimizer)


class EpochRows:
    """Each step's loss terms of an epoch, kept on the device in one preallocated tensor.

    Keeping the steps' own 0-d tensors instead keeps whole batches alive: in torch 2.13 on CPU,
    the 0-d result of ``F.mse_loss`` (and ``binary_cross_entropy``) is a view into the
    elementwise buffer, so its storage is the size of the batch. Measured, a streamed 64×64 RGB
    epoch grew by a batch (12.6 MB) a step and ran out of a 2 GB cap.
    The terms are those of the epoch's first step; a term missing from a later step counts 0.
    """

    def __init__(self, steps: int, device: torch.device):
        self.steps, self.device = steps, device
        self.keys: list[str] = []
        self.values: torch.Tensor | None = None
        self.n = 0

    def __len__(self) -> int:
        return self.n

    def __bool__(self) -> bool:
        return self.n > 0

    def add(self, row: dict[str, torch.Tensor]) -> None:
        """Copy one step's terms in (two small kernels, no read of the device)."""
        if self.values is None:
            self.keys = list(row)
            self.values = torch.empty((self.steps, len(self.keys)), device=self.device)
        zero = self.values.new_zeros(())
        self.values[self.n] = torch.stack([row.get(k, zero).float() for k in self.keys])
        self.n += 1

    def sums(self) -> torch.Tensor:
        """Each term summed over the steps so far, on the device."""
        assert self.values is not None
        return self.values[: self.n].sum(0)

    def first_bad(self) -> tuple[int, list[str]]:
        """The first step with a term not finite, and those terms (reads the device)."""
        assert self.values is not None
        finite = torch.isfinite(self.values[: self.n])
        bad_rows = (~finite.all(1)).nonzero().flatten().tolist()
        if not bad_rows:
            return self.n - 1, ["loss"]
        i = bad_rows[0]
        return i, [k for k, ok in zip(self.keys, finite[i].tolist()) if not ok]


class Trainer:
    """Trains one model on one dataset: ``prepare()``, then ``step()`` per batch, ``evaluate()``
    per epoch; ``fit()`` does it all and returns the Done result, ``events()`` yields as it goes.

    ``resume`` is a loaded Run whose weights, optimizer state and history carry on. With
    ``save`` the run is written to its folder when training ends, however it ends (the
    :class:`aelab.callbacks.SaveRun` callback); ``callbacks`` get every event.
    """

    def __init__(
        self,
        spec: ModelSpec,
        params: Params | dict[str, Any] | None,
        data: Any,
        config: TrainConfig | dict[str, Any] | None = None,
        *,
        resume: Any = None,
        callbacks: Iterable[Any] = (),
        stop: StopSignal | None = None,
        save: bool = True,
        runs_dir: str | None = None,
        step_every: int = 1,
        strategy: SingleProcess | None = None,
    ):
        self.spec = spec
        self.data = data
        self.config = (
            config
            if isinstance(config, TrainConfig)
            else validate(TrainConfig, config or {}, "training settings")
        )
        self.params = spec.validate_params(params if resume is None else resume.params)
        self.resume = resume
        self.stop = stop
        self.step_every = step_every
        self.strategy = strategy
        self.callbacks = list(callbacks)
        self.save = save
        self.runs_dir = runs_dir
        self.run_id: str = ""
        self.run_dir: str | None = None
        self.model: Model | None = None
        self.history: list[dict[str, Any]] = list(resume.history) if resume is not None else []
        self.status, self.message = "completed", ""
        self.diverged_at: dict[str, Any] | None = None
        self._prepared = False
        self._done: Done | None = None

    # -- set-up ----------------------------------------------------------------------------
    def prepare(self) -> Start:
        """Choose the device, split and move the data, build (or resume) the model and its
        optimizers; idempotent. Returns the Start event (not yet sent to the callbacks)."""
        if self._prepared:
            return self._start
        from . import callbacks as cb
        from . import runs as runs_mod

        config, spec, data = self.config, self.spec, self.data
        self.strategy = self.strategy or pick_strategy()
        self.allocator = memory.keep_freed_memory()
        if config.threads:
            torch.set_num_threads(config.threads)
        self.device = self.strategy.device(pick_device(config.device))
        resume = self.resume
        if resume is not None:
            model = resume.model
            if tuple(model.sample_shape) != tuple(data.sample_shape):
                raise ParamsError(
                    f"This run was trained on samples of shape {list(model.sample_shape)}, "
                    f"but the data has shape {list(data.sample_shape)}."
                )
        else:
            model = build_seeded(spec, self.params, data.sample_shape, data.kind, config.seed)
        model.to(self.device).train()
        self.memory_format = layout.apply(model, self.device, config.precision)
        self.strategy.prepare(model)
        if config.compile:
            compile_networks(model)
        optimizers = model.configure_optimizers(config)
        if list(optimizers) != list(model.steps):
            raise TrainingError(
                f"Model '{spec.id}' declares steps {list(model.steps)} but optimizers "
                f"{list(optimizers)}."
            )
        if resume is not None:
            self._resume_optimizers(optimizers, runs_mod)
        fields = tuple(model.batch_fields)
        self.train_feed, self.val_feed = make_feeds(
            data, config.val_fraction, config.seed, fields, self.device, spec.id, config.workers
        )
        self.model, self.optimizers = model, optimizers
        self._model_dict = model.__dict__
        self.step_module = self.strategy.wrap(StepModule(model))
        self._steps = list(optimizers.items())
        self.autocast, self.scaler = mixed_precision(config.precision, self.device)
        self.n_train = len(self.train_feed)
        self.batch_size = min(config.batch_size, self.n_train)
        if self.strategy.world_size > 1:  # the global batch must split evenly
            self.batch_size = config.batch_size
        self.sampler = self.strategy.batch_sampler(self.n_train, self.batch_size, config.seed)
        self.steps_per_epoch = len(self.sampler)
        self.first_epoch = self.history[-1]["epoch"] + 1 if self.history else 1
        self.global_step = (self.first_epoch - 1) * self.steps_per_epoch
        # A resumed run continues with new noise rather than replaying epoch 1's (its shuffles
        # follow the epoch number).
        model.seed_rng(self.strategy.noise_seed(config.seed + self.first_epoch - 1), self.device)
        if resume is not None:
            self.run_id, self.run_dir = resume.run_id, str(resume.path)
        else:
            self.run_id = runs_mod.new_run_id(spec.id)
            self.run_dir = str(runs_mod.runs_root(self.runs_dir) / self.run_id)
        if self.save and self.strategy.is_main:
            self.callbacks.insert(0, cb.SaveRun())
        self.snapshot = Snapshot(model, optimizers)
        self._start = Start(
            self.run_id,
            spec.id,
            str(self.device),
            sum(p.numel() for p in model.parameters()),
            self.n_train,
            len(self.val_feed) if self.val_feed is not None else 0,
            config.epochs,
            self.steps_per_epoch,
            self.train_feed.streamed,
            self.train_feed.workers,
            self.strategy.world_size,
            config.precision,
            self.memory_format,
        )
        self._prepared = True
        return self._start

    def _resume_optimizers(self, optimizers: dict[str, Any], runs_mod: Any) -> None:
        """Load the saved moments, keeping the hyperparameters just configured: a resumed run
        trains at the learning rate asked for now, not the one it was saved with."""
        state = self.resume.optimizer_state
        error = getattr(self.resume, "optimizer_error", None)
        if error:
            raise TrainingError(error)
        if not state:
            return
        fresh = {
            name: [{k: v for k, v in g.items() if k != "params"} for g in opt.param_groups]
            for name, opt in optimizers.items()
        }
        runs_mod.load_optimizer_state(optimizers, state)
        for name, opt in optimizers.items():
            for group, settings in zip(opt.param_groups, fresh[name]):
                group.update(settings)

    # -- training --------------------------------------------------------------------------
    def batches(self) -> Iterator[dict[str, torch.Tensor]]:
        """One epoch of batches (dicts of the model's batch fields), shuffled for this epoch."""
        self.sampler.set_epoch(getattr(self, "epoch", self.first_epoch))
        return self.train_feed.batches(self.sampler)

    def step(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """One step of every optimizer on ``batch``; its loss terms (and ``total``) as 0-d
        tensors, left unread: reading a value waits for the device, so the trainer reads them
        only at the event rate and at the end of an epoch."""
        # Straight into the instance dict: nn.Module.__setattr__ costs ~2 µs a step.
        self._model_dict["global_step"] = self.global_step
        row: dict[str, torch.Tensor] = {}
        self.step_metrics: dict[str, Any] = {}
        total: torch.Tensor | None = None
        scaler = self.scaler
        for name, opt in self._steps:
            opt.zero_grad(set_to_none=True)
            with self.autocast():
                terms = self.step_module(batch, name)
            metrics = terms.pop(METRICS, None) if METRICS in terms else None
            loss = terms["loss"]
            if scaler is None:
                loss.backward()
                opt.step()
            else:
                scaler.scale(loss).backward()
                scaler.step(opt)
            value = loss.detach()
            total = value if total is None else total + value
            for k, v in terms.items():
                if k != "loss":
                    row[k] = value if v is loss else v.detach()
            if metrics:
                self.step_metrics.update(metrics)
        if scaler is not None:
            scaler.update()
        assert total is not None
        row["total"] = total
        self.global_step += 1
        return row

    def _read(self, row: dict[str, torch.Tensor]) -> dict[str, float]:
        """A step's terms as numbers, averaged over the processes."""
        keys = list(row)
        values = self.strategy.mean(torch.stack([row[k].float() for k in keys])).tolist()
        return dict(zip(keys, values))

    def _epoch_means(
        self, rows: EpochRows, metric_sums: dict[str, Any]
    ) -> tuple[dict[str, float], dict[str, float]]:
        """The mean of each term and metric over the epoch's steps and the processes: one read
        of the device for the whole epoch."""
        metric_keys = list(metric_sums)
        metric_values = [
            torch.as_tensor(metric_sums[k]).float().to(self.device) for k in metric_keys
        ]
        parts = [rows.sums(), *(v.reshape(1) for v in metric_values)]
        means = self.strategy.mean(torch.cat(parts)).tolist()
        keys = rows.keys
        losses = {k: means[i] / len(rows) for i, k in enumerate(keys)}
        metrics = {k: means[len(keys) + i] / len(rows) for i, k in enumerate(metric_keys)}
        return losses, metrics

    def _first_bad(self, rows: EpochRows, first_step: int) -> None:
        """Record where a loss first stopped being finite (read only once one is known bad)."""
        i, bad = rows.first_bad()
        self.diverged_at = {
            "epoch": self.epoch,
            "step": first_step + i + 1,
            "terms": [k for k in bad if k != "total"] or ["loss"],
            "phase": "training",
        }

    def evaluate(self, tensors: dict[str, torch.Tensor] | None = None) -> tuple[dict, dict]:
        """Mean loss terms and metrics on the validation data (or ``tensors``), each process
        evaluating its share."""
        if tensors is not None:
            return evaluate_batches(self.model, tensors)
        feed = self.val_feed
        if feed is None:
            return {}, {}
        rng = self.model.rng
        state = rng.get_state() if rng is not None else None
        # Batches of EVAL_BATCH / world: each rank's i-th batch is its share of the i-th batch
        # one process would evaluate, so noise drawn in validation matches too.
        world = self.strategy.world_size
        share = self.strategy.val_share(len(feed))
        sums, metric_sums, n = evaluate_totals(
            self.model, feed.ordered(share, max(1, EVAL_BATCH // world))
        )
        if state is not None:  # evaluating must not move the training's noise on
            rng.set_state(state)
        keys, metric_keys = list(sums), list(metric_sums)
        parts = [sums[k] for k in keys] + [metric_sums[k] for k in metric_keys]
        parts = [p.to(self.device) for p in parts] + [torch.tensor(float(n), device=self.device)]
        totals = self.strategy.sum(torch.stack(parts)).tolist()
        count = max(totals[-1], 1.0)
        return (
            {k: totals[i] / count for i, k in enumerate(keys)},
            {k: totals[len(keys) + i] / count for i, k in enumerate(metric_keys)},
        )

    def _diverge(self) -> None:
        """Go back to the last good epoch, weights and optimizer state both, and say where."""
        self.snapshot.restore()
        self.status = "diverged"
        at = self.diverged_at or {}
        where = (
            f"at epoch {at.get('epoch')}, step {at.get('step')}"
            if at.get("phase") == "training"
            else f"in the validation after epoch {at.get('epoch')}"
        )
        terms = ", ".join(at.get("terms") or ["loss"])
        kept = (
            f"the weights and optimizer state of epoch {self.history[-1]['epoch']} were restored"
            if self.history
            else "the initial weights were restored"
        )
        self.message = (
            f"Training diverged {where}: the {terms} loss became NaN or infinite; {kept}. "
            "Try a lower learning rate."
        )

    # -- the loop --------------------------------------------------------------------------
    def _emit(self, event: Event) -> None:
        for method in self._hooks[type(event)]:
            method(self, event)

    def _collect_hooks(self) -> None:
        """Each event type's callback methods, found once (a no-op of the base class skipped)."""
        from .callbacks import Callback

        names = {Start: "on_start", Step: "on_step", Epoch: "on_epoch", Done: "on_end"}
        self._hooks = {
            kind: [
                getattr(cb, name)
                for cb in self.callbacks
                if callable(getattr(cb, name, None))
                and getattr(type(cb), name, None) is not getattr(Callback, name)
            ]
            for kind, name in names.items()
        }

    def events(self) -> Iterator[Event]:
        """Train, sending every event to the callbacks and yielding it."""
        start = self.prepare()
        self._collect_hooks()
        try:
            self._emit(start)
            yield start
            yield from self._loop()
        except (GeneratorExit, KeyboardInterrupt):
            # The consumer went away (a closed browser tab, Ctrl-C): keep what was learned.
            if self._done is None:
                self.status = "interrupted"
                self.message = "Training was interrupted; the run keeps its last complete step."
                self._emit(self._result())
            raise
        finally:
            if self.model is not None:  # the rows of the global batch's noise were for training
                self.model.__dict__.pop("_share", None)
            for feed in (getattr(self, "train_feed", None), getattr(self, "val_feed", None)):
                if feed is not None:
                    feed.close()
            for callback in self.callbacks:
                close = getattr(callback, "close", None)
                if close is not None:
                    close(self)

    def fit(self) -> Done:
        """Train to the end and return the result (callbacks see every event on the way)."""
        for _ in self.events():
            pass
        assert self._done is not None
        return self._done

    def _loop(self) -> Iterator[Event]:
        config = self.config
        self.train_time, self.seen = 0.0, 0
        self.t_start = time.perf_counter()
        self.losses: dict[str, float] = {}
        self.val_losses: dict[str, float] = {}
        self.metrics: dict[str, float] = {}
        self.val_metrics: dict[str, float] = {}
        self.epochs_done = 0
        last = self.first_epoch + config.epochs - 1
        for epoch in range(self.first_epoch, last + 1):
            self.epoch = epoch
            rows = EpochRows(self.steps_per_epoch, self.device)
            metric_sums: dict[str, Any] = {}
            first_step = self.global_step
            seen_before = self.seen
            t0 = time.perf_counter()
            try:
                for batch in self.batches():
                    row = self.step(batch)
                    rows.add(row)
                    for k, v in self.step_metrics.items():
                        v = v.detach() if isinstance(v, torch.Tensor) else v
                        metric_sums[k] = metric_sums[k] + v if k in metric_sums else v
                    self.seen += len(batch["x"]) * self.strategy.world_size
                    if self.step_every and self.global_step % self.step_every == 0:
                        losses = self._read(row)
                        if not _finite(losses):
                            self._first_bad(rows, first_step)
                            break
                        now = time.perf_counter()
                        event = Step(
                            epoch,
                            self.global_step,
                            losses,
                            self.seen / max(self.train_time + now - t0, 1e-9),
                            now - self.t_start,
                            _floats(self.step_metrics) if self.step_metrics else {},
                        )
                        self._emit(event)
                        yield event
                    if self.stop is not None and self.stop.is_set():
                        self.status = "stopped"
                        self.message = f"Training stopped by request during epoch {epoch}."
                        break
            except DataError as exc:  # streamed data that cannot be read: keep what was learned
                self.status, self.message = "failed", str(exc)
                break
            epoch_time = time.perf_counter() - t0
            self.train_time += epoch_time
            epoch_sps = (self.seen - seen_before) / max(epoch_time, 1e-9)
            if rows and self.diverged_at is None:
                losses, metrics = self._epoch_means(rows, metric_sums)
                if not _finite(losses):
                    self._first_bad(rows, first_step)
            if self.diverged_at is not None:
                self._diverge()
                break
            if rows:
                try:
                    val_losses, val_metrics = self.evaluate()
                except DataError as exc:
                    self.status, self.message = "failed", str(exc)
                    break
                if not _finite(val_losses):
                    bad = [k for k, v in val_losses.items() if not math.isfinite(v)]
                    self.diverged_at = {
                        "epoch": epoch,
                        "step": self.global_step,
                        "terms": bad,
                        "phase": "validation",
                    }
                    self._diverge()
                    break
                self.snapshot.take()
                self.losses, self.val_losses = losses, val_losses
                self.metrics, self.val_metrics = metrics, val_metrics
                self.epochs_done += 1
                sps = self.seen / max(self.train_time, 1e-9)
                entry = {
                    "epoch": epoch,
                    "losses": losses,
                    "val_losses": val_losses,
                    "samples_per_s": sps,
                    "epoch_samples_per_s": epoch_sps,
                    "elapsed": time.perf_counter() - self.t_start,
                }
                if metrics or val_metrics:
                    entry["metrics"], entry["val_metrics"] = metrics, val_metrics
                self.history.append(entry)
                event = Epoch(
                    epoch,
                    last,
                    losses,
                    val_losses,
                    sps,
                    time.perf_counter() - self.t_start,
                    metrics,
                    val_metrics,
                    epoch_sps,
                )
                self._emit(event)
                yield event
            if self.status == "stopped":
                break
        self.model.eval()
        done = self._result()
        self._emit(done)
        yield done

    def _result(self) -> Done:
        """The Done event for the current state (the SaveRun callback fills in ``run_dir``)."""
        done = Done(
            self.run_id,
            None,
            getattr(self, "losses", {}),
            getattr(self, "val_losses", {}),
            getattr(self, "seen", 0) / max(getattr(self, "train_time", 0.0), 1e-9),
            time.perf_counter() - getattr(self, "t_start", time.perf_counter()),
            getattr(self, "epochs_done", 0),
            self.status,
            self.message,
            self.model,
            getattr(self, "metrics", {}),
            getattr(self, "val_metrics", {}),
            self.diverged_at,
        )
        self._done = done
        return done


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
    callbacks: Iterable[Any] = (),
) -> Iterator[Event]:
    """Train ``spec`` on ``data`` and yield Start, Step, Epoch and Done events (a Trainer's
    ``events()``; use ``Trainer(...).fit()`` for the result alone)."""
    trainer = Trainer(
        spec,
        params,
        data,
        config,
        resume=resume,
        callbacks=callbacks,
        stop=stop,
        save=save,
        runs_dir=runs_dir,
        step_every=step_every,
    )
    yield from trainer.events()


class _CallableModule(types.ModuleType):
    """This module answers ``aelab.train(...)``: the package's ``train`` attribute becomes this
    module once anything imports it, so calling it trains through the public API."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        from .api import train as train_model

        return train_model(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
