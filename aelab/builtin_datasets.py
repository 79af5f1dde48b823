"""aelab's built-in datasets, registered like any plugin's; none of them downloads anything.

Generated or bundled arrays are built once per process (``lru_cache``); every load returns
fresh copies so callers may modify them freely.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import Any

import numpy as np

from .data import Dataset, apply_scaling
from .hookspecs import hookimpl

SHAPE_NAMES = ["circle", "square", "triangle", "cross"]
SHAPES_N, SHAPES_SIZE, SHAPES_SEED = 2000, 16, 0
SWISSROLL_N, SWISSROLL_SEED, SWISSROLL_BINS = 2000, 0, 6
DIGITS_SCALING = {"method": "divide", "scale": 16.0}


@lru_cache(maxsize=1)
def _digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits as sk_load_digits  # late import: sklearn is slow

    bunch = sk_load_digits()
    x = apply_scaling(bunch.images[:, None], DIGITS_SCALING)
    return x, bunch.target.astype(np.int64)


def load_digits() -> Dataset:
    """scikit-learn's bundled 8x8 handwritten digits, (1797, 1, 8, 8), labels 0-9."""
    x, labels = _digits_arrays()
    return Dataset(
        name="digits",
        x=x.copy(),
        kind="image",
        labels=labels.copy(),
        label_names=[str(d) for d in range(10)],
        scaling=dict(DIGITS_SCALING),
        source="builtin:digits",
    )


def _shape_masks(label: int, dx: np.ndarray, dy: np.ndarray, r: np.ndarray) -> np.ndarray:
    """Which supersampled points lie inside a shape of class ``label`` centred at dx = dy = 0."""
    if label == 0:  # circle
        return dx**2 + dy**2 <= r**2
    if label == 1:  # square, a little smaller so its area is close to the circle's
        return np.maximum(np.abs(dx), np.abs(dy)) <= 0.85 * r
    if label == 2:  # upright triangle: apex at dy = -r (image rows grow downwards), base at +r
        return (dy <= r) & (np.abs(dx) <= (dy + r) / 2)
    arm = 0.3 * r  # cross: two bars of half-width ``arm``
    return ((np.abs(dx) <= arm) & (np.abs(dy) <= r)) | ((np.abs(dy) <= arm) & (np.abs(dx) <= r))


def make_shapes(
    n: int = SHAPES_N, size: int = SHAPES_SIZE, seed: int = SHAPES_SEED
) -> tuple[np.ndarray, np.ndarray]:
    """Seeded grayscale images (n, 1, size, size) of the SHAPE_NAMES classes, and their labels."""
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(n) % len(SHAPE_NAMES)).astype(np.int64)
    radius = rng.uniform(0.16, 0.38, n) * size
    cx, cy = rng.uniform(radius, size - radius), rng.uniform(radius, size - radius)
    supersample = 4  # 4x4 points per pixel give antialiased edges
    coords = ((np.arange(size * supersample) + 0.5) / supersample).astype(np.float32)
    x = np.empty((n, 1, size, size), dtype=np.float32)
    for label in range(len(SHAPE_NAMES)):
        idx = np.flatnonzero(labels == label)
        dx = coords[None, None, :] - cx[idx, None, None].astype(np.float32)
        dy = coords[None, :, None] - cy[idx, None, None].astype(np.float32)
        mask = _shape_masks(label, dx, dy, radius[idx, None, None].astype(np.float32))
        blocks = mask.reshape(len(idx), size, supersample, size, supersample)
        x[idx, 0] = blocks.mean(axis=(2, 4), dtype=np.float32)
    return x, labels


@lru_cache(maxsize=1)
def _shapes_arrays() -> tuple[np.ndarray, np.ndarray]:
    return make_shapes()


def load_shapes() -> Dataset:
    """Generated 16x16 circles, squares, triangles and crosses, labelled by shape."""
    x, labels = _shapes_arrays()
    return Dataset(
        name="shapes",
        x=x.copy(),
        kind="image",
        labels=labels.copy(),
        label_names=list(SHAPE_NAMES),
        scaling={"method": "none"},
        source="builtin:shapes",
    )


@lru_cache(maxsize=1)
def _swissroll_raw() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import make_swiss_roll  # late import: sklearn is slow

    points, position = make_swiss_roll(n_samples=SWISSROLL_N, random_state=SWISSROLL_SEED)
    return points, position


def swissroll_raw() -> np.ndarray:
    """The unscaled swiss-roll points, (N, 3) float64, as ``load_swissroll`` scales them."""
    return _swissroll_raw()[0].copy()


def load_swissroll() -> Dataset:
    """A seeded 3-D swiss roll, min-max scaled per axis, labelled by position along the roll."""
    points, position = _swissroll_raw()
    scaling = {"method": "minmax", "min": points.min(0).tolist(), "max": points.max(0).tolist()}
    along = (position - position.min()) / (position.max() - position.min())
    labels = np.minimum((along * SWISSROLL_BINS).astype(np.int64), SWISSROLL_BINS - 1)
    names = [f"segment {i + 1}" for i in range(SWISSROLL_BINS)]
    names[0], names[-1] = f"{names[0]} (inner)", f"{names[-1]} (outer)"
    return Dataset(
        name="swissroll",
        x=apply_scaling(points, scaling),
        kind="flat",
        labels=labels,
        label_names=names,
        scaling=scaling,
        source="builtin:swissroll",
    )


def _table(name: str, bunch: Any) -> Dataset:
    """A scikit-learn table, min-max scaled per column, keeping its column and class names."""
    scaling = {
        "method": "minmax",
        "min": bunch.data.min(0).tolist(),
        "max": bunch.data.max(0).tolist(),
    }
    return Dataset(
        name=name,
        x=apply_scaling(bunch.data, scaling),
        kind="flat",
        labels=bunch.target.astype(np.int64),
        label_names=[str(n) for n in bunch.target_names],
        scaling=scaling,
        source=f"builtin:{name}",
        feature_names=[str(n) for n in bunch.feature_names],
    )


def load_wine() -> Dataset:
    """scikit-learn's wine recognition table: 178 wines, 13 chemical measurements, 3 cultivars."""
    from sklearn.datasets import load_wine as sk_load_wine  # late import: sklearn is slow

    return _table("wine", sk_load_wine())


def load_breast_cancer() -> Dataset:
    """scikit-learn's breast cancer (Wisconsin diagnostic) table: 569 samples, 30 features."""
    from sklearn.datasets import load_breast_cancer as sk_load  # late import: sklearn is slow

    return _table("breast_cancer", sk_load())


SENSORS_STEPS, SENSORS_SEED = 4096, 0
SENSORS_WINDOW, SENSORS_STRIDE = 64, 8
SENSOR_CHANNELS = ["temperature", "vibration", "pressure"]
SENSOR_NOISE = np.array([0.3, 0.1, 0.1])
# The injected anomalies: (kind, first step, length, channel or None for all). Their positions
# are known, so each step and each window is labelled (1 = anomalous).
SENSOR_ANOMALIES = (
    ("spike", 700, 4, 1),
    ("level shift", 1400, 48, 2),
    ("frequency change", 2150, 64, 1),
    ("flatline", 2900, 56, 0),
    ("noise burst", 3550, 40, None),
)


def make_sensors(
    n_steps: int = SENSORS_STEPS, seed: int = SENSORS_SEED
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A seeded series of three periodic channels with noise, one reading every 15 minutes,
    and the anomalies of SENSOR_ANOMALIES injected: values (T, 3), step labels (T,), times."""
    rng = np.random.default_rng(seed)
    t = np.arange(n_steps, dtype=np.float64)
    values = np.stack(
        [
            20 + 5 * np.sin(2 * np.pi * t / 96),  # a daily cycle (96 readings a day)
            np.sin(2 * np.pi * t / 16) + 0.5 * np.sin(2 * np.pi * t / 40),
            101 + 2 * np.tanh(3 * np.sin(2 * np.pi * t / 128)),  # a smoothed square wave
        ],
        axis=1,
    )
    values += rng.normal(0.0, SENSOR_NOISE, size=values.shape)
    labels = np.zeros(n_steps, dtype=np.int64)
    for kind, start, length, channel in SENSOR_ANOMALIES:
        span = slice(start, min(start + length, n_steps))
        if kind == "spike":
            values[span, channel] += 6.0
        elif kind == "level shift":
            values[span, channel] += 3.0
        elif kind == "frequency change":
            fast = np.sin(2 * np.pi * t[span] / 6) + 0.5 * np.sin(2 * np.pi * t[span] / 40)
            values[span, channel] = fast + rng.normal(0.0, SENSOR_NOISE[channel], len(fast))
        elif kind == "flatline":
            values[span, channel] = values[start, channel]
        else:  # a noise burst on every channel
            values[span] += rng.normal(0.0, 5 * SENSOR_NOISE, size=values[span].shape)
        labels[span] = 1
    start = np.datetime64("2024-01-01T00:00")
    times = np.datetime_as_string(start + np.arange(n_steps) * np.timedelta64(15, "m"), unit="m")
    return values, labels, times


@lru_cache(maxsize=1)
def _sensors_raw() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return make_sensors()


def load_sensors() -> Dataset:
    """The generated sensor series in windows of 64 readings every 8, labelled 1 when a window
    holds an injected anomaly."""
    from .series import RawSeries, SeriesOptions, cut

    values, labels, times = _sensors_raw()
    raw = RawSeries(values.copy(), list(SENSOR_CHANNELS), times.copy(), "time", labels.copy())
    raw.label_column = "anomaly"
    options = SeriesOptions(SENSORS_WINDOW, SENSORS_STRIDE, "global", "time")
    return cut(raw, options, "sensors", "builtin:sensors")


BUILTINS: dict[str, tuple[Callable[[], Dataset], str]] = {
    "digits": (
        load_digits,
        "Handwritten digits bundled with scikit-learn: 1797 grayscale 8x8 images of 0-9 "
        "(the default).",
    ),
    "shapes": (
        load_shapes,
        "Generated 16x16 grayscale circles, squares, triangles and crosses of random position "
        "and size, 2000 images labelled by shape.",
    ),
    "swissroll": (
        load_swissroll,
        "A 3-D swiss roll of 2000 points for flat models, labelled by position along the roll "
        "in 6 segments.",
    ),
    "wine": (
        load_wine,
        "scikit-learn's wine table: 178 wines, 13 named chemical measurements, labelled by "
        "cultivar (3 classes).",
    ),
    "breast_cancer": (
        load_breast_cancer,
        "scikit-learn's breast cancer table: 569 tumours, 30 named cell-nucleus features, "
        "labelled malignant or benign.",
    ),
    "sensors": (
        load_sensors,
        "A generated time series: 4096 readings of temperature, vibration and pressure with "
        "noise and 5 injected anomalies, in windows of 64 readings every 8, labelled anomaly "
        "when a window holds one.",
    ),
}


@hookimpl
def register_datasets(register: Callable) -> None:
    """Register digits, shapes, swissroll, wine, breast_cancer and sensors."""
    for name, (loader, description) in BUILTINS.items():
        register(name, loader, description)
