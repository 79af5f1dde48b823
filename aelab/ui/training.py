"""Training from the page: a live-view callback on the trainer, Stop, reopening runs."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import gradio as gr
import numpy as np
import pandas as pd

from ..callbacks import Callback
from ..errors import AelabError, DataError
from ..events import Done, Epoch, Start, Step, StopSignal
from ..runs import Run, list_runs, load_run_by_id
from ..series import is_series, series_picture
from . import curves, widgets
from .session import UPLOAD, LabSession, load_dataset, preview_batch, series_options, validated
from .uploads import data_mismatch, describe_data, restorable

if TYPE_CHECKING:  # the trainer imports torch: the page is built without it
    from ..train import Trainer

# The page refreshes at most this often; everything in between is pure training time.
PLOT_EVERY_S = 1.0
GRID_EVERY_S = 2.5
MAX_PLOT_ROWS = 1500  # points sent per update; more only slows the page and the trainer
log = logging.getLogger("aelab.ui")
POINTS_PER_EPOCH = 40  # loss-curve points per epoch, whatever the batch count


def loss_frame(rows: list[dict[str, Any]]) -> Any:
    """Loss rows as the update the loss plot draws (one line per series); None when empty."""
    if not rows:
        # Gradio's plot fixes its encodings from the first frame it draws, and an empty frame
        # has no types: the lines would then never appear. Draw nothing until there is data.
        return None
    if len(rows) > MAX_PLOT_ROWS:  # long trainings: thin the per-step points, keep every epoch's
        steps = [r for r in rows if not r["series"].endswith("validation")]
        stride = math.ceil(len(steps) / MAX_PLOT_ROWS)
        keep = {id(r) for r in steps[::stride]}
        rows = [r for r in rows if id(r) in keep or r["series"].endswith("validation")]
    # The terms at the largest scale, in their fixed colours; the others go to a second panel
    # (curves.small_panel, drawn from the session's rows whenever this plot changes).
    return curves.panels(rows)[0]


def _terms(losses: dict[str, float]) -> dict[str, float]:
    """Loss terms worth a line: 'total' only when it sums several terms."""
    named = {k: v for k, v in losses.items() if k != "total"}
    return losses if len(named) != 1 else named


def _placeholders(rows: list[dict[str, Any]], losses: dict[str, float]) -> list[dict[str, Any]]:
    """NaN rows naming the validation series before their first point exists.

    Gradio's plot keeps the colour legend of the first frame it draws, so a series that first
    appears later would never be drawn; NaN rows name it without drawing anything.
    """
    known = {r["series"] for r in rows}
    names = [f"{term} · validation" for term in _terms(losses)]
    return [{"epoch": math.nan, "loss": math.nan, "series": n} for n in names if n not in known]


def history_rows(history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Loss rows from a saved run's per-epoch history (train and validation)."""
    rows = []
    for h in history:
        for split, key in (("train", "losses"), ("validation", "val_losses")):
            for term, v in _terms(h.get(key) or {}).items():
                if math.isfinite(v):
                    rows.append(
                        {"epoch": float(h["epoch"]), "loss": v, "series": f"{term} · {split}"}
                    )
    return rows


def collapse_note(model: Any, session: LabSession) -> str:
    """Warnings for the page when the model collapsed (its posterior carries nothing, its
    samples are all alike), checked on the held-out data; empty when all is well."""
    from ..diagnostics import diagnose

    if model is None or session.data is None:
        return ""
    try:
        found = diagnose(model, session.test_set())
    except Exception:  # a diagnosis must never cost the user the run
        log.exception("collapse diagnosis failed")
        return ""
    titles = {"posterior_collapse": "Posterior collapse", "mode_collapse": "Mode collapse"}
    return "".join(f"\n\n> ⚠ **{titles.get(d.code, d.code)}.** {d.message}" for d in found)


def small_terms(session: LabSession) -> Any:
    """The second loss panel: terms far smaller than the main ones, on their own scale."""
    return curves.panels(getattr(session, "loss_rows", None) or [])[1]


def progress_grid(
    model: Any, x: np.ndarray, names: list[str] | None = None, data: Any = None
) -> np.ndarray:
    """The live picture: reconstructions for an autoencoder, samples for a pure generator
    (flat data: line charts over the features, named when the data names them; a series:
    the whole series along its time axis with its reconstruction and the error per step)."""
    from .. import inspect as ins  # torch: not before it is needed

    caps = getattr(model, "capabilities", frozenset())
    # Pictures draw from generators of their own, never the training's (see inspect.corrupt).
    if "reconstruct" in caps and is_series(data):
        return series_picture(model, data)
    if "reconstruct" in caps:
        return ins.reconstruction_grid(model, x, names=names)
    fake = ins.samples(model, len(x))
    if x.ndim == 2:
        from .. import charts

        k = min(3, len(x))
        titles = [f"real {j + 1}" for j in range(k)] + [f"generated {j + 1}" for j in range(k)]
        return charts.gallery(np.concatenate([x[:k], fake[:k]]), names, 3, 6, titles)
    return ins.image_grid([x, fake], ["real", "generated"])


def status_line(epoch: int, epochs: int, step: int, sps: float, losses: dict, val: dict) -> str:
    """One markdown line with the epoch, speed and the latest losses."""
    loss_txt = " · ".join(f"{k} {v:.4g}" for k, v in _terms(losses).items())
    val_txt = f" · validation {val['total']:.4g}" if val.get("total") is not None else ""
    return f"**Epoch {epoch}/{epochs}** · step {step} · {sps:,.0f} samples/s · {loss_txt}{val_txt}"


def metric_history_rows(history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Metric rows (figures that are not losses) from per-epoch history, train and validation."""
    rows = []
    for h in history:
        for split, key in (("train", "metrics"), ("validation", "val_metrics")):
            for name, v in (h.get(key) or {}).items():
                if math.isfinite(v):
                    rows.append(
                        {"epoch": float(h["epoch"]), "value": v, "series": f"{name} · {split}"}
                    )
    return rows


def metric_frame(rows: list[dict[str, Any]]) -> pd.DataFrame | None:
    """Metric rows as the DataFrame the metrics plot draws; None when the model reports none."""
    if not rows:
        return None
    return pd.DataFrame(rows, columns=["epoch", "value", "series"])


def metrics_view(session: LabSession) -> Any:
    """The metrics plot for this tab's run: shown only when its model reports metrics."""
    frame = metric_frame(session.metric_rows)
    return gr.LinePlot(value=frame, visible=frame is not None)


def _result(done: Done) -> dict[str, Any]:
    return {
        "run_id": done.run_id,
        "run_dir": done.run_dir,
        "status": done.status,
        "epochs_done": done.epochs_done,
        "losses": done.losses,
        "val_losses": done.val_losses,
        "metrics": done.metrics,
        "val_metrics": done.val_metrics,
        "diverged_at": done.diverged_at,
        "samples_per_s": done.samples_per_s,
        "message": done.message,
    }


class LiveView(Callback):
    """The lab's live view of a training: turns the trainer's events into page frames
    (status, loss frame, grid, result, run id), at most one every PLOT_EVERY_S seconds."""

    def __init__(
        self,
        session: LabSession,
        history: list[dict],
        preview: Any,
        steps: int,
        names: list[str] | None = None,
        data: Any = None,
    ):
        self.session = session
        self.preview, self.names, self.data = preview, names, data
        self.steps_per_epoch = steps
        self.rows = history_rows(history)
        session.loss_rows = self.rows  # the small-scale loss panel reads them as they grow
        self.done_epochs = history[-1]["epoch"] if history else 0
        self.frame: tuple | None = None  # the newest frame the page has not had yet
        self.last_plot = self.last_grid = 0.0
        self.epochs, self.val = 0, {}
        self.announced = False  # whether the validation series are in the plot's first frame

    def on_start(self, trainer: Trainer, event: Start) -> None:
        self.epochs = event.epochs + self.done_epochs
        status = (
            f"**Training** {trainer.spec.name} on {trainer.data.name}: {event.n_train:,} "
            f"training and {event.n_val:,} validation samples, {event.n_params:,} parameters, "
            f"{event.device}."
        )
        # None first: the plot then takes its series from the next frame (see loss_frame).
        grid = progress_grid(trainer.model, self.preview, self.names, self.data)
        self.frame = (status, None, grid, None, trainer.run_id)
        self.last_plot = self.last_grid = time.perf_counter()

    def on_step(self, trainer: Trainer, event: Step) -> None:
        x = event.step / self.steps_per_epoch
        if not self.announced:
            self.rows.extend(_placeholders(self.rows, event.losses))
            self.announced = True
        for term, v in _terms(event.losses).items():
            self.rows.append({"epoch": x, "loss": v, "series": f"{term} · train"})
        now = time.perf_counter()
        if now - self.last_plot < PLOT_EVERY_S:
            return
        grid: Any = gr.skip()
        if now - self.last_grid >= GRID_EVERY_S:
            grid, self.last_grid = (
                progress_grid(trainer.model, self.preview, self.names, self.data),
                now,
            )
        status = status_line(
            event.epoch, self.epochs, event.step, event.samples_per_s, event.losses, self.val
        )
        self.frame = (status, loss_frame(self.rows), grid, None, trainer.run_id)
        self.last_plot = time.perf_counter()

    def on_epoch(self, trainer: Trainer, event: Epoch) -> None:
        self.val = event.val_losses
        for term, v in _terms(self.val).items():
            self.rows.append(
                {"epoch": float(event.epoch), "loss": v, "series": f"{term} · validation"}
            )
        self.session.metric_rows.extend(metric_history_rows(trainer.history[-1:]))

    def on_end(self, trainer: Trainer, event: Done) -> None:
        session = self.session
        session.model, session.run_id, session.run_dir = event.model, event.run_id, event.run_dir
        session.history = list(trainer.history)
        verdict = {
            "completed": "Finished",
            "stopped": "Stopped",
            "diverged": "Halted",
            "interrupted": "Interrupted",
            "failed": "Halted",
        }[event.status]
        status = (
            f"**{verdict}** after {event.epochs_done} epoch(s) · "
            f"{event.samples_per_s:,.0f} samples/s · run `{event.run_id}` saved. {event.message}"
        ) + collapse_note(event.model, self.session)
        grid = progress_grid(event.model, self.preview, self.names, self.data)
        self.frame = (status, loss_frame(self.rows), grid, _result(event), event.run_id)


def train_stream(
    session: LabSession,
    resume: Run | None,
    spec: Any,
    params: Any,
    config: Any,
    data: Any,
    trackers: list[Any] | None = None,
) -> Iterator[tuple[str, pd.DataFrame, Any, dict | None, str]]:
    """Train and yield (status, loss frame, grid, result, run id), throttled to the page;
    ``trackers`` are callbacks that log the training (``aelab.tracking.make_trackers``)."""
    if session.training:
        raise AelabError("This tab is already training; press Stop first.")
    history = list(resume.history) if resume is not None else []
    n_train = len(data) - (
        int(round(len(data) * config.val_fraction)) if config.val_fraction else 0
    )
    steps_per_epoch = max(1, math.ceil(n_train / min(config.batch_size, max(n_train, 1))))
    names = getattr(data, "feature_names", None)
    preview = preview_batch(data, config)
    live = LiveView(session, history, preview, steps_per_epoch, names, data)
    from ..train import Trainer  # torch: imported by the first training, not by the page

    stop = StopSignal()
    trainer = Trainer(
        spec,
        params,
        data,
        config,
        resume=resume,
        stop=stop,
        step_every=max(1, steps_per_epoch // POINTS_PER_EPOCH),
        callbacks=[live, *(trackers or [])],
    )
    trainer.prepare()  # builds the model now, so the page holds it while it trains
    session.stop, session.training = stop, True
    session.spec, session.params, session.config, session.data = spec, trainer.params, config, data
    session.model, session.run_id = trainer.model, trainer.run_id
    session.metric_rows, session.export_folder = metric_history_rows(history), None
    try:
        for event in trainer.events():
            if live.frame is not None:
                frame, live.frame = live.frame, None
                if isinstance(event, Done) and event.status == "diverged":
                    gr.Warning(event.message)
                yield frame
    finally:
        session.training = False


def chosen_trackers(log: Any) -> Generator[tuple, None, list[Any]]:
    """The callbacks of the trackers ticked under "Log to" (returned by ``yield from``); one
    that cannot be used (its package is missing) is said in the status, then raised."""
    from ..tracking import make_trackers

    try:
        return make_trackers(log or [])
    except AelabError as exc:
        yield (f"**Not started.** {exc}", gr.skip(), gr.skip(), gr.skip(), gr.skip())
        raise


def start_training(
    session: LabSession,
    model_id: str,
    dataset: str,
    upload: Any,
    params: dict,
    config: dict,
    series: bool = False,
    window: Any = None,
    stride: Any = None,
    log: list[str] | None = None,
) -> Iterator[tuple]:
    """Train a new model with the page's settings (the /train endpoint); ``series``, ``window``
    and ``stride`` read the data as one long series cut into windows; ``log`` names the
    experiment trackers to log to."""
    trackers = yield from chosen_trackers(log)
    spec, p, c = validated(model_id, params, config)
    data = load_dataset(session, dataset, upload, series_options(series, window, stride))
    spec.build(p, data.sample_shape, data.kind)  # fail fast with the model's own message
    yield from train_stream(session, None, spec, p, c, data, trackers)


def continue_training(
    session: LabSession,
    run_id: str,
    dataset: str,
    upload: Any,
    config: dict,
    series: bool = False,
    window: Any = None,
    stride: Any = None,
    log: list[str] | None = None,
) -> Iterator[tuple]:
    """Train a saved run further with the page's training settings (the /continue endpoint),
    only on data of the kind and sample shape it was trained on."""
    if not run_id:
        raise AelabError("Train a model or open a saved run first; then it can be continued.")
    trackers = yield from chosen_trackers(log)
    run = load_run_by_id(run_id)
    _, _, c = validated(run.spec.id, run.params.model_dump(), config)
    data = _continue_data(session, run, dataset, upload, series_options(series, window, stride))
    yield from train_stream(session, run, run.spec, run.params, c, data, trackers)


def _continue_data(session: LabSession, run: Run, dataset: str, upload: Any, options: Any) -> Any:
    """The chosen data (a series cut as the run's was unless other settings are given), refused
    with one sentence naming both unless it has the run's kind and sample shape."""
    cut = run.series
    if cut and (
        options is None or (options.window, options.step) == (cut["window"], cut["stride"])
    ):
        try:  # cut as the run was, its scaling and columns included
            data = load_dataset(session, dataset, upload, cut)
        except DataError as first:  # not a series: load it as it is, to say how it differs
            try:
                data = load_dataset(session, dataset, upload)
            except AelabError:
                raise first from None
    else:
        data = load_dataset(session, dataset, upload, options)
    problem = data_mismatch(run.data_meta, data.meta())
    if problem:
        raise AelabError(problem)
    return data


def stop_training(session: LabSession) -> str:
    """Ask this tab's training to stop after the current step (the /stop endpoint)."""
    if not session.training or session.stop is None:
        return "Nothing is training in this tab."
    session.stop.set()
    return "Stop requested: training ends after the current step and the run is saved."


def run_choices() -> list[tuple[str, str]]:
    """Saved runs for the Runs dropdown: (label, run id), newest first."""
    out = []
    for r in list_runs():
        val = (r.get("val_losses") or {}).get("total")
        val_txt = f", val {val:.4g}" if val is not None else ""
        label = f"{r['run_id']} ({r['model']} on {r['data']}, {r['epochs']} epochs{val_txt})"
        out.append((label, r["run_id"]))
    return out


def _round(value: Any, digits: int = 4) -> Any:
    """A figure to ``digits`` significant digits for a table (None stays None)."""
    if not isinstance(value, (int, float)) or not math.isfinite(value) or value == 0:
        return value
    return float(f"{value:.{digits}g}")


def runs_table() -> pd.DataFrame:
    """Saved runs as a table."""
    rows = [
        {
            "run": r["run_id"],
            "model": r["model"],
            "data": r["data"],
            "epochs": r["epochs"],
            "status": r["status"],
            "val loss": _round((r.get("val_losses") or {}).get("total")),
            "saved": str(r["saved_at"] or "")[:16].replace("T", " "),
        }
        for r in list_runs()
    ]
    return pd.DataFrame(
        rows, columns=["run", "model", "data", "epochs", "status", "val loss", "saved"]
    )


def open_run(session: LabSession, run_id: str) -> dict[str, Any]:
    """Load a saved run into this tab: model, settings, data and its loss history."""
    if not run_id:
        raise AelabError("Choose a saved run first.")
    if session.training:
        raise AelabError("This tab is training; press Stop before opening another run.")
    run = load_run_by_id(run_id)
    data, choice, note = _run_data(session, run)
    session.spec, session.params, session.config = run.spec, run.params, run.config
    session.model, session.run_id, session.run_dir = run.model, run.run_id, str(run.path)
    session.history, session.data = list(run.history), data
    session.metric_rows = metric_history_rows(run.history)
    session.export_folder = None  # an export made earlier belongs to another run
    values = {k: widgets.display(v) for k, v in run.params.model_dump().items()}
    grid = None
    if data is not None:
        names = getattr(data, "feature_names", None)
        grid = progress_grid(run.model, preview_batch(data, run.config), names, data)
    rows = session.loss_rows = history_rows(run.history)
    return {
        "model_id": run.spec.id,
        "values": values,
        "config": {k: widgets.display(v) for k, v in run.config.model_dump().items()},
        **choice,  # the Build column's dataset, upload and series settings for its data
        "loss": loss_frame(rows),
        "grid": grid,
        "status": f"**Opened** run `{run.run_id}` ({run.spec.name}, "
        f"{len(run.history)} epochs, {run.status}).{note}",
    }


def _run_data(session: LabSession, run: Run) -> tuple[Any, dict[str, Any], str]:
    """A reopened run's data (a built-in by name, its series cut again the same way, or the
    uploaded file while it is still on the server unchanged), the Build column's settings for
    it, and a note asking for the file by name when it cannot be had."""
    meta = run.data_meta or {}
    source, record, cut = str(meta.get("source") or ""), meta.get("upload"), run.series
    choice: dict[str, Any] = {
        "dataset": None,
        "upload": gr.skip(),
        "series": (
            (True, cut.get("window"), cut.get("stride")) if cut else (False, gr.skip(), gr.skip())
        ),
    }
    ask = f"upload {describe_data(meta)} to continue this run."
    try:
        if source.startswith("builtin:"):
            choice["dataset"] = source.removeprefix("builtin:")
            return load_dataset(session, choice["dataset"], None, cut), choice, ""
        if record:
            choice.update(dataset=UPLOAD, upload=None)
            files = restorable(record, gr.utils.get_upload_folder())
            if files is None:
                gone = (
                    f"Its data, {record.get('name')}, is no longer on the server (or has changed)"
                )
                gr.Warning(f"{gone}: {ask}")
                return None, choice, f" {gone}: {ask}"
            choice["upload"] = files
            return load_dataset(session, UPLOAD, files, cut), choice, ""
        if source and Path(source).exists():  # a file the CLI trained on: shown, not uploaded
            choice["dataset"] = UPLOAD
            return load_dataset(session, source, None, cut), choice, f" {ask[:1].upper()}{ask[1:]}"
    except AelabError as exc:
        return None, choice, f" Its data cannot be loaded again ({str(exc).rstrip('.')}): {ask}"
    return None, choice, f" Its data ({meta.get('name')}) is not available here: {ask}"
