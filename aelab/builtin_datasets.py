"""aelab's built-in datasets, registered like any plugin's; none of them downloads anything.

Generated or bundled arrays are built once per process (``lru_cache``); every load returns
fresh copies so callers may modify them freely.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache

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
}


@hookimpl
def register_datasets(register: Callable) -> None:
    """Register digits, shapes and swissroll."""
    for name, (loader, description) in BUILTINS.items():
        register(name, loader, description)
