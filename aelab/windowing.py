"""Cutting one long series into windows and putting window values back on its time axis.

numpy only: :mod:`aelab.series` (training data) and :mod:`aelab.runtime` (apps that run an
export, without torch) both cut and scale windows with these functions, so a series is cut the
same way at training and at inference. A series is an array (T, C): T time steps of C channels;
windows are (N, C, W), the layout a 1-D convolution reads.
"""

from __future__ import annotations

from typing import Any

import numpy as np

SCALINGS = ("global", "window")
WINDOW_METHOD = "window_minmax"  # the scaling method recorded for per-window scaling

HOW = (
    "windows x[:, t:t + window] of the (channels, time) series for t = 0, stride, 2*stride, ..., "
    "plus one window ending at the last time step when the strides do not reach it; each window "
    "is one sample of shape (channels, window). scaling 'global': every window with the recorded "
    "per-channel min and max of the training series; 'window': each channel of each window "
    "min-max scaled on its own (method window_minmax)"
)


def window_problem(n_steps: int, window: Any, stride: Any) -> str | None:
    """Why a series of ``n_steps`` cannot be cut with this window and stride (a sentence
    without its full stop), or None."""
    if isinstance(window, bool) or not isinstance(window, (int, np.integer)) or window < 2:
        return f"the window must be a whole number of at least 2 time steps, not {window!r}"
    if isinstance(stride, bool) or not isinstance(stride, (int, np.integer)) or stride < 1:
        return f"the stride must be a whole number of at least 1 time step, not {stride!r}"
    if window > n_steps:
        return (
            f"the window of {window} time steps is longer than the series, which has "
            f"{n_steps}; choose a window of at most {n_steps} steps"
        )
    return None


def window_starts(n_steps: int, window: int, stride: int) -> np.ndarray:
    """The first time step of each window: 0, stride, 2*stride, ..., and one more window ending
    at the last step when the strides leave a tail uncovered (so every step is in a window)."""
    problem = window_problem(n_steps, window, stride)
    if problem:
        raise ValueError(problem[0].upper() + problem[1:] + ".")
    starts = np.arange(0, n_steps - window + 1, stride, dtype=np.int64)
    if starts[-1] + window < n_steps:
        starts = np.append(starts, np.int64(n_steps - window))
    return starts


def cut_windows(values: np.ndarray, starts: np.ndarray, window: int) -> np.ndarray:
    """Windows (N, C, W) of a series (T, C), one starting at each of ``starts``."""
    values = np.asarray(values)
    view = np.lib.stride_tricks.sliding_window_view(values, window, axis=0)  # (T-W+1, C, W)
    return np.ascontiguousarray(view[np.asarray(starts, dtype=np.int64)])


def series_scaling(values: np.ndarray, scaling: str) -> dict:
    """The recorded scaling for windows of this series (T, C): per-channel min and max of the
    whole series ('global', as (C, 1) lists so they broadcast over (N, C, W)), or each window
    on its own ('window')."""
    if scaling == "window":
        return {"method": WINDOW_METHOD}
    values = np.asarray(values, dtype=np.float64)
    return {
        "method": "minmax",
        "min": values.min(axis=0)[:, None].tolist(),
        "max": values.max(axis=0)[:, None].tolist(),
    }


def minmax_each_window(x: np.ndarray) -> np.ndarray:
    """Each channel of each window (the last axis) min-max scaled on its own; 0 where constant."""
    lo = x.min(axis=-1, keepdims=True)
    hi = x.max(axis=-1, keepdims=True)
    return (x - lo) / np.where(hi > lo, hi - lo, x.dtype.type(1.0))


def unscale_windows(scaled: np.ndarray, raw_windows: np.ndarray, scaling: dict) -> np.ndarray:
    """Windows in [0, 1] (e.g. reconstructions) back in the series' own units: with the
    recorded scaling, or for per-window scaling with the range of the raw window at each place."""
    y = np.asarray(scaled, dtype=np.float64)
    method = scaling.get("method", "none")
    if method == WINDOW_METHOD:
        lo = raw_windows.min(axis=-1, keepdims=True)
        hi = raw_windows.max(axis=-1, keepdims=True)
    elif method == "minmax":
        lo = np.asarray(scaling["min"], np.float64)
        hi = np.asarray(scaling["max"], np.float64)
    elif method == "divide":
        return y * float(scaling["scale"])
    else:
        return y
    return lo + y * np.where(hi > lo, hi - lo, 0.0)


def overlap_average(windows: np.ndarray, starts: np.ndarray, n_steps: int) -> np.ndarray:
    """Window values (N, C, W) put back on the time axis (T, C): each step the mean of every
    window that covers it, NaN where none does."""
    windows = np.asarray(windows, dtype=np.float64)
    n, channels, width = windows.shape
    total = np.zeros((n_steps, channels))
    count = np.zeros(n_steps)
    starts = np.asarray(starts, dtype=np.int64)
    for j in range(width):  # one offset of every window at a time
        np.add.at(total, starts + j, windows[:, :, j])
        np.add.at(count, starts + j, 1.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return total / count[:, None]


def as_series(values: object, channels: int | None = None) -> np.ndarray:
    """A series as float64 (T, C) from (T,) or (T, C) numbers; ValueError (one sentence)
    when it is not numeric and finite or has another number of channels."""
    arr = np.asarray(values)
    if arr.dtype.kind not in "biuf":
        raise ValueError(f"A series must hold numbers, not values of dtype {arr.dtype}.")
    if arr.ndim not in (1, 2) or arr.size == 0:
        raise ValueError(
            f"A series is an array (time steps,) or (time steps, channels), not {arr.shape}."
        )
    arr = arr.astype(np.float64).reshape(len(arr), -1)
    if channels is not None and arr.shape[1] != channels:
        raise ValueError(
            f"The series has {arr.shape[1]} channel(s) but the model was trained on {channels}; "
            "pass an array (time steps, channels) with the training channels in their order."
        )
    if not np.isfinite(arr).all():
        raise ValueError("The series holds NaN or infinite values; fill them before windowing.")
    return arr


def window_series(values: object, window: int, stride: int) -> tuple[np.ndarray, np.ndarray]:
    """Raw windows (N, C, W) of a series (T,) or (T, C), and the step each window starts at,
    cut as aelab cuts its training series."""
    series = as_series(values)
    starts = window_starts(len(series), window, stride)
    return cut_windows(series, starts, window), starts


def put_back(
    recon: np.ndarray,
    x: np.ndarray,
    raw: np.ndarray,
    starts: np.ndarray,
    n_steps: int,
    scaling: dict,
) -> dict[str, np.ndarray]:
    """Window reconstructions ``recon`` of the scaled windows ``x`` (cut from ``raw`` raw
    windows at ``starts``) back on the time axis: ``reconstruction`` (T, C) in the series'
    units, ``channel_error`` (T, C) the squared error in [0, 1] units averaged over the windows
    covering each step, ``error`` (T,) its mean over channels, ``window_error`` (N,)."""
    squared = (np.asarray(recon, np.float64) - np.asarray(x, np.float64)) ** 2
    channel_error = overlap_average(squared, starts, n_steps)
    return {
        "reconstruction": overlap_average(unscale_windows(recon, raw, scaling), starts, n_steps),
        "channel_error": channel_error,
        "error": channel_error.mean(axis=1),
        "window_error": squared.reshape(len(squared), -1).mean(axis=1),
    }
