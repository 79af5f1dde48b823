"""Time series as data: one long series cut into windows, and reconstructions put back in time.

A series is T time steps of C channels: a CSV whose rows are time steps (one numeric column,
or several = channels; an optional time/date column kept as the time axis for display; an
optional label column of whole numbers per step, 0 = normal), or a .npy array (T,) or (T, C).
It is cut into windows of ``window`` steps every ``stride`` steps (plus one window ending at the
last step when the strides leave a tail), scaled to [0, 1] per channel over the whole series
(``scaling="global"``) or each window on its own (``"window"``).

The windows are a flat Dataset of samples (C, W) whose ``series`` field is a
:class:`SeriesInfo`: dense models flatten them like any flat sample, and a 1-D convolution
reads channels and time. :func:`reconstruct_series` puts a model's window reconstructions back
on the time axis (the mean of the overlapping windows) with the error at each time step.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import numpy as np

from . import loaders, windowing
from .data import Dataset, apply_scaling
from .errors import DataError

DEFAULT_WINDOW = 64
TIME_COLUMNS = ("time", "date", "datetime", "timestamp", "ds")
SCALINGS = windowing.SCALINGS
# Keys of a series' record (run.json, export manifest) that describe it rather than cut it.
_RECORD_ONLY = ("channels", "n_steps", "n_windows", "label_column", "how")


@dataclass(frozen=True)
class SeriesOptions:
    """How to cut a series into windows: ``window`` steps every ``stride`` steps (None: an
    eighth of the window), scaled ``"global"`` or per ``"window"``; ``time_column`` names the
    CSV column holding the time axis (found by name or as a non-numeric first column if None)."""

    window: int = DEFAULT_WINDOW
    stride: int | None = None
    scaling: str = "global"
    time_column: str | None = None

    @property
    def step(self) -> int:
        """The stride in time steps."""
        return self.stride if self.stride is not None else max(1, self.window // 8)


def coerce_options(value: Any) -> SeriesOptions | None:
    """SeriesOptions from options, a dict (such as a run's recorded ``series``), True for the
    defaults, or None/False for no series; a DataError for anything else."""
    if value is None or value is False:
        return None
    if value is True:
        return SeriesOptions()
    if isinstance(value, SeriesOptions):
        options = value
    elif isinstance(value, dict):
        names = {f.name for f in fields(SeriesOptions)}
        unknown = sorted(k for k in value if k not in names and k not in _RECORD_ONLY)
        if unknown:
            raise DataError(
                f"Unknown series setting {', '.join(map(repr, unknown))}; the settings are "
                "window, stride, scaling and time_column."
            )
        options = SeriesOptions(**{k: v for k, v in value.items() if k in names})
    else:
        raise DataError(
            f"Series settings must be SeriesOptions or a dict, not {type(value).__name__}."
        )
    if options.scaling not in SCALINGS:
        raise DataError(
            f"The series scaling must be 'global' or 'window', not {options.scaling!r}."
        )
    for what, number, least in (("window", options.window, 2), ("stride", options.stride, 1)):
        if number is None and what == "stride":
            continue
        if isinstance(number, bool) or not isinstance(number, (int, np.integer)) or number < least:
            raise DataError(
                f"The {what} must be a whole number of at least {least} time "
                f"step{'s' if least > 1 else ''}, not {number!r}."
            )
    return options


@dataclass(eq=False)
class SeriesInfo:
    """A series and how it was cut: kept on a windowed Dataset as ``data.series``.

    ``values`` is the whole series (T, C) in its own units; ``starts`` the first time step of
    each window of the Dataset (a subset keeps its windows' starts); ``time`` the time axis as
    read (T,), strings or numbers, or None (then steps 0 … T-1); ``step_labels`` the label of
    every step (T,) when the file had a label column.
    """

    values: np.ndarray
    channels: list[str]
    window: int
    stride: int
    scaling: str
    starts: np.ndarray
    time: np.ndarray | None = None
    time_column: str | None = None
    step_labels: np.ndarray | None = None
    label_column: str | None = None

    @property
    def n_steps(self) -> int:
        """The length T of the whole series."""
        return int(self.values.shape[0])

    def take(self, idx: Any) -> SeriesInfo:
        """The same series with only the windows at ``idx``."""
        return replace(self, starts=np.atleast_1d(self.starts[idx]))

    def options(self) -> SeriesOptions:
        """The settings that cut it."""
        return SeriesOptions(self.window, self.stride, self.scaling, self.time_column)

    def meta(self) -> dict:
        """What a run records (run.json's data ``series``) to cut the series again."""
        return {
            "window": self.window,
            "stride": self.stride,
            "scaling": self.scaling,
            "time_column": self.time_column,
            "label_column": self.label_column,
            "channels": list(self.channels),
            "n_steps": self.n_steps,
        }


# -- reading --------------------------------------------------------------------------------


@dataclass
class RawSeries:
    """A series as read, before it is cut: values (T, C) in its own units, and the rest."""

    values: np.ndarray  # (T, C) float64
    channels: list[str]
    time: np.ndarray | None = None
    time_column: str | None = None
    step_labels: np.ndarray | None = None
    label_column: str | None = None


def _column(header: list[str] | None, name: str | None, what: str, where: str) -> int | None:
    if name is None:
        return None
    if header is None:
        raise DataError(
            f"{where}: has no header row, so the {what} column '{name}' cannot be found; add a "
            "header row naming the columns."
        )
    lowered = [h.lower() for h in header]
    if name.strip().lower() not in lowered:
        raise DataError(
            f"{where}: has no column named '{name}'; its columns are {', '.join(header)}."
        )
    return lowered.index(name.strip().lower())


def read_series_csv(path: Path, time_column: str | None, label_column: str | None) -> RawSeries:
    """A CSV whose rows are time steps: numeric channels, an optional time column (by name, a
    conventional name, or a non-numeric first column) and an optional label column."""
    where = str(path)
    rows = loaders._csv_rows(path)
    header = None
    if rows and not any(loaders._is_number(c) for c in rows[0][1]):
        header = [c.strip() for c in rows[0][1]]
    data = rows[1:] if header is not None else rows
    if len(data) < 2:
        raise DataError(f"{where}: has {len(data)} row(s); a series needs at least 2 time steps.")
    width = len(rows[0][1])
    for line, row in data:
        if len(row) != width:
            raise DataError(
                f"{where}: row {line} has {len(row)} values but row {rows[0][0]} has {width}; "
                "every row needs the same number of columns."
            )
    time_idx = _column(header, time_column, "time", where)
    if time_idx is None and header is not None:
        time_idx = next((j for j, h in enumerate(header) if h.lower() in TIME_COLUMNS), None)
    if time_idx is None and not loaders._is_number(data[0][1][0]):
        time_idx = 0  # dates or names in the first column: the time axis
    label_idx = _column(header, label_column, "label", where)
    if label_idx is None and header is not None:
        lowered = [h.lower() for h in header]
        label_idx = next((j for j, h in enumerate(lowered) if h in loaders.LABEL_COLUMNS), None)
    cols = [j for j in range(width) if j not in (time_idx, label_idx)]
    if not cols:
        raise DataError(f"{where}: has no numeric column; a series needs at least one channel.")
    besides = " and ".join(
        f"the {what} column"
        for what, j in (("time", time_idx), ("label", label_idx))
        if j is not None
    )
    values = loaders._csv_numbers(data, cols, header, where, besides or None)
    loaders._csv_check_finite(values, data, cols, header, where)
    out = RawSeries(
        values, [header[j] for j in cols] if header else [f"channel {j + 1}" for j in cols]
    )
    if time_idx is not None:
        out.time = np.array([row[time_idx].strip() for _, row in data])
        out.time_column = header[time_idx] if header else None
    if label_idx is not None:
        name = header[label_idx]
        texts = [row[label_idx] for _, row in data]
        labels, names = loaders._csv_labels(texts, f"{where} (column '{name}')")
        if names is not None or labels.min() < 0:
            raise DataError(
                f"{where}: the label column '{name}' must hold whole numbers of at least 0 per "
                "time step (0 normal, 1 or more a kind of anomaly)."
            )
        out.step_labels, out.label_column = labels, name
    return out


def read_series_npy(path: Path) -> RawSeries:
    """A .npy array (T,) or (T, C), never unpickled."""
    where = str(path)
    arr = loaders.load_npy_array(path)
    if arr.ndim not in (1, 2):
        raise DataError(
            f"{where}: has shape {arr.shape}; a series is (time steps,) or (time steps, channels)."
        )
    values = np.asarray(arr, dtype=np.float64).reshape(len(arr), -1)
    loaders.check_finite(values, where)
    return RawSeries(values, [f"channel {j + 1}" for j in range(values.shape[1])])


def read_series(path: Path, options: SeriesOptions, label_column: str | None = None) -> Dataset:
    """Read a .csv or .npy file as one long series and cut it into windows."""
    suffix = path.suffix.lower()
    if path.is_dir() or suffix not in (".csv", ".npy"):
        raise DataError(
            f"{path}: a time series is read from a .csv file (rows are time steps) or a .npy "
            "array (time steps, channels); convert it to one of those."
        )
    nbytes = path.stat().st_size
    if nbytes == 0:
        raise DataError(f"{path}: the file is empty; a series needs at least 2 time steps.")
    loaders.check_size(str(path), nbytes)
    if suffix == ".csv":
        read = read_series_csv(path, options.time_column, label_column)
    else:
        if options.time_column is not None:
            raise DataError(
                f"{path}: a .npy array has no columns, so the time column "
                f"'{options.time_column}' cannot be found; use a CSV file for a time axis."
            )
        read = read_series_npy(path)
    return cut(read, options, path.name, str(path.resolve()))


def cut(read: Any, options: SeriesOptions, name: str, source: str) -> Dataset:
    """Windows of a series (anything with ``values``, ``channels``, ``time``, ``time_column``,
    ``step_labels`` and ``label_column``) as a Dataset with its SeriesInfo."""
    values = np.asarray(read.values, dtype=np.float64)
    n_steps = len(values)
    problem = windowing.window_problem(n_steps, options.window, options.step)
    if problem:
        raise DataError(f"{name}: {problem}.")
    starts = windowing.window_starts(n_steps, options.window, options.step)
    if len(starts) < 2:
        raise DataError(
            f"{name}: a window of {options.window} steps gives only one window of the "
            f"{n_steps}-step series; choose a shorter window so there are at least 2."
        )
    scaling = windowing.series_scaling(values, options.scaling)
    x = apply_scaling(windowing.cut_windows(values, starts, options.window), scaling)
    labels = label_names = None
    if read.step_labels is not None:
        steps = np.asarray(read.step_labels, dtype=np.int64)
        labels = windowing.cut_windows(steps[:, None], starts, options.window).max(axis=(1, 2))
        if steps.max() <= 1:
            label_names = ["normal", "anomaly"]
    info = SeriesInfo(
        values=values,
        channels=list(read.channels),
        window=int(options.window),
        stride=int(options.step),
        scaling=options.scaling,
        starts=starts,
        time=read.time,
        time_column=read.time_column,
        step_labels=read.step_labels,
        label_column=read.label_column,
    )
    return Dataset(
        name=name,
        x=x,
        kind="flat",
        labels=labels,
        label_names=label_names,
        scaling=scaling,
        source=source,
        feature_names=list(read.channels),
        series=info,
    )


def rewindow(data: Dataset, options: SeriesOptions) -> Dataset:
    """A series Dataset cut again with other settings (a built-in series with --window ...)."""
    info = require_series(data)
    if options.time_column not in (None, info.time_column):
        raise DataError(
            f"Dataset '{data.name}' keeps its time axis in '{info.time_column}'; its time "
            "column cannot be changed."
        )
    options = replace(options, time_column=info.time_column)
    if options == info.options():
        return data
    return cut(info, options, data.name, data.source)


def require_series(data: Any) -> SeriesInfo:
    """The SeriesInfo of a windowed Dataset, or a one-sentence DataError."""
    info = getattr(data, "series", None)
    if not isinstance(info, SeriesInfo):
        name = getattr(data, "name", "the data")
        raise DataError(
            f"Dataset '{name}' is not a time series cut into windows; load a series with "
            "series=... (aelab train --series), or use the built-in 'sensors'."
        )
    return info


def is_series(data: Any) -> bool:
    """Whether a Dataset holds windows of a time series (samples (C, W))."""
    return isinstance(getattr(data, "series", None), SeriesInfo)


# -- back on the time axis --------------------------------------------------------------------


@dataclass
class SeriesReconstruction:
    """A model's reconstruction of a series, step by step (T steps, C channels).

    ``values`` and ``reconstruction`` are in the series' own units (T, C); ``error`` (T,) is
    each step's squared error in the model's [0, 1] units, averaged over the channels and over
    every window covering the step (``channel_error`` (T, C) before the channel mean), NaN
    where no window covers a step; ``window_error`` (N,) is each window's mean squared error.
    """

    time: np.ndarray  # (T,) the time axis as read, or the step numbers
    channels: list[str]
    values: np.ndarray
    reconstruction: np.ndarray
    error: np.ndarray
    channel_error: np.ndarray
    window_error: np.ndarray
    starts: np.ndarray
    window: int
    step_labels: np.ndarray | None = None


def _reconstruct_windows(model: Any, x: np.ndarray, batch_size: int) -> np.ndarray:
    """A torch model's (or an onnx export's) reconstruction of windows, as numpy."""
    try:
        import torch
    except ImportError:  # the runtime without torch: an ExportedModel
        torch = None
    if torch is not None and isinstance(model, torch.nn.Module):
        caps = getattr(model, "capabilities", ())
        if "reconstruct" not in caps:
            from .applications import ApplicationError

            raise ApplicationError(
                f"{type(model).__name__} cannot reconstruct, so it cannot put a series back "
                "together; use a model that reconstructs."
            )
        was_training = model.training
        device = next((p.device for p in model.parameters()), torch.device("cpu"))
        model.eval()
        try:
            with torch.no_grad():
                parts = [
                    model.reconstruct(torch.as_tensor(x[i : i + batch_size], device=device))
                    .float()
                    .cpu()
                    .numpy()
                    for i in range(0, len(x), batch_size)
                ]
        finally:
            model.train(was_training)
        return np.concatenate(parts)
    return np.asarray(model.reconstruct(x), dtype=np.float32)


def reconstruct_series(model: Any, data: Dataset, batch_size: int = 256) -> SeriesReconstruction:
    """Reconstruct every window of a series Dataset and put the windows back on the time axis
    (the mean of the windows covering each step), with the error at each step: where along the
    series the model fails. ``model`` is a trained aelab Model or an ``aelab.runtime`` export."""
    info = require_series(data)
    if len(data) == 0:
        raise DataError(f"Dataset '{data.name}' holds no windows to reconstruct.")
    recon = _reconstruct_windows(model, data.x, batch_size)
    if recon.shape != data.x.shape:
        raise DataError(
            f"The model reconstructs windows as {recon.shape[1:]}, but the series '{data.name}' "
            f"has windows of {data.x.shape[1:]}; use a model trained on this series' windows."
        )
    raw = windowing.cut_windows(info.values, info.starts, info.window)
    back = windowing.put_back(recon, data.x, raw, info.starts, info.n_steps, data.scaling)
    return SeriesReconstruction(
        time=info.time if info.time is not None else np.arange(info.n_steps),
        channels=list(info.channels),
        values=info.values.copy(),
        reconstruction=back["reconstruction"],
        error=back["error"],
        channel_error=back["channel_error"],
        window_error=back["window_error"],
        starts=info.starts.copy(),
        window=info.window,
        step_labels=None if info.step_labels is None else info.step_labels.copy(),
    )


# -- the command line -------------------------------------------------------------------------


def add_series_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags that read --data as one long time series (aelab train and friends)."""
    group = parser.add_argument_group("time series (rows of --data are time steps)")
    group.add_argument(
        "--series",
        action="store_true",
        help="read --data (.csv or .npy) as one long series cut into windows",
    )
    group.add_argument(
        "--window", type=int, help=f"time steps per window (default {DEFAULT_WINDOW})"
    )
    group.add_argument(
        "--stride", type=int, help="time steps between window starts (default window / 8)"
    )
    group.add_argument(
        "--scaling",
        choices=SCALINGS,
        help="scale per channel over the whole series (global, default) or each window alone",
    )
    group.add_argument(
        "--time-column", help="the CSV column holding the time axis (default: found by name)"
    )


def options_from_args(args: argparse.Namespace) -> SeriesOptions | None:
    """SeriesOptions from the flags of :func:`add_series_arguments`, or None when none is given
    (any of --window, --stride, --scaling or --time-column implies --series)."""
    given = {
        key: getattr(args, key, None)
        for key in ("window", "stride", "scaling", "time_column")
        if getattr(args, key, None) is not None
    }
    if not given and not getattr(args, "series", False):
        return None
    return coerce_options(given)


def step_max(
    window_values: np.ndarray, starts: np.ndarray, window: int, n_steps: int
) -> np.ndarray:
    """Per time step, the largest value of the windows covering it (NaN where none does): a
    window score (an anomaly score, say) put back on the time axis."""
    out = np.full(n_steps, -np.inf)
    for value, start in zip(np.asarray(window_values, float), np.asarray(starts), strict=True):
        seg = out[int(start) : int(start) + window]
        np.maximum(seg, value, out=seg)
    out[np.isinf(out)] = np.nan
    return out


def series_picture(model: Any, data: Dataset, error: np.ndarray | None = None, **kwargs: Any):
    """The whole series along its time axis with the model's reconstruction and, below, the
    per-step reconstruction error (or ``error``, per step, when given): an (H, W, 3) image."""
    from . import charts

    rec = reconstruct_series(model, data)
    labels = [str(t) for t in rec.time]
    return charts.series(
        rec.values,
        rec.reconstruction,
        rec.channels,
        rec.error if error is None else error,
        labels,
        **kwargs,
    )
