"""Datasets: the Dataset type, and loading built-in names or user files scaled to [0, 1].

Every loader records how raw values became [0, 1] (``Dataset.scaling``), so the same
mapping can be applied to new data later with :func:`apply_scaling`.
"""

from __future__ import annotations

import copy
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from . import image_loaders, loaders, plugins, windowing
from .errors import AelabError, DataError

if TYPE_CHECKING:  # streaming imports this module
    from .streaming import StreamingDataset

DEFAULT_DATASET = "digits"
KINDS = ("flat", "image")


class _Formats(Sequence):
    """What each registered reader reads (its ``label``), looked up on use: a plugin's reader
    appears here as soon as it is registered."""

    def _labels(self) -> list[str]:
        from .readers import get_readers  # late import: readers imports this module

        return [reader.label for reader in get_readers().values()]

    def __getitem__(self, index: Any) -> Any:
        return self._labels()[index]

    def __len__(self) -> int:
        return len(self._labels())

    def __repr__(self) -> str:
        return repr(self._labels())


# The accepted data formats, one per registered reader (a live view, see :func:`formats`).
FORMATS: Sequence[str] = _Formats()


def formats() -> list[str]:
    """What each registered reader reads, in the order readers are asked."""
    return list(FORMATS)


@dataclass(eq=False)
class Dataset:
    """Samples scaled to [0, 1], with optional labels and a record of how they were scaled.

    A table is flat data (N, D), ``feature_names`` naming its D columns. A time series cut into
    windows is flat data too, (N, C, W) with ``series`` set (an :class:`aelab.series.SeriesInfo`:
    the whole series, its time axis, window, stride and scaling) and ``feature_names`` naming
    its C channels: every dense model takes it as it is (they flatten any sample), and a 1-D
    convolution reads its channels and time axis.
    """

    name: str
    # float32; (N, D) when flat, (N, C, W) for windows of a series, (N, C, H, W) when image
    x: np.ndarray = field(repr=False)
    kind: str
    labels: np.ndarray | None = field(default=None, repr=False)  # int64 (N,)
    label_names: list[str] | None = None
    scaling: dict = field(default_factory=dict)
    source: str = ""
    # Further per-sample arrays a model may ask for in its batches (``Model.batch_fields``),
    # by field name; "x" and "y" are the samples and the labels above.
    extra: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    # The label values kept by :func:`keep_labels` (the one-class protocol), recorded in meta().
    kept_labels: list[int] | None = None
    # Names of the values along axis 1 of flat data: a table's columns, a series' channels.
    feature_names: list[str] | None = None
    # For windows of a time series: the series itself and how it was cut (aelab.series).
    series: Any = field(default=None, repr=False)
    # In memory (an aelab.streaming.StreamingDataset reads its samples from disk instead).
    streamed = False

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise DataError(
                f"Dataset '{self.name}': kind must be 'flat' or 'image', not '{self.kind}'."
            )
        self.x = _as_float32(self.x, f"Dataset '{self.name}'")
        want = 4 if self.kind == "image" else 3 if self.series is not None else 2
        if self.x.ndim != want or (self.kind == "image" and self.x.shape[1] not in (1, 3)):
            layout = {2: "(N, D)", 3: "(N, C, W) for windows of a series"}.get(
                want, "(N, C, H, W) with C = 1 or 3"
            )
            raise DataError(
                f"Dataset '{self.name}': {self.kind} data must have shape {layout}, "
                f"not {self.x.shape}."
            )
        if self.labels is not None:
            self._check_labels()
        if self.feature_names is not None:
            self._check_feature_names()
        for key, values in self.extra.items():
            if key in ("x", "y") or len(values) != len(self.x):
                raise DataError(
                    f"Dataset '{self.name}': extra field '{key}' must be named other than x "
                    f"and y and hold one entry per sample ({len(self.x)})."
                )

    def _check_labels(self) -> None:
        self.labels = np.asarray(self.labels, dtype=np.int64)
        if self.labels.shape != (len(self.x),):
            raise DataError(
                f"Dataset '{self.name}': labels have shape {self.labels.shape} but there are "
                f"{len(self.x)} samples; give exactly one label per sample."
            )
        if self.label_names is not None:
            self.label_names = [str(n) for n in self.label_names]
            if self.labels.size and (
                self.labels.min() < 0 or self.labels.max() >= len(self.label_names)
            ):
                raise DataError(
                    f"Dataset '{self.name}': labels run from {self.labels.min()} to "
                    f"{self.labels.max()} but there are {len(self.label_names)} label names; "
                    "give one name per label value 0, 1, 2 and so on."
                )

    def _check_feature_names(self) -> None:
        self.feature_names = [str(n) for n in self.feature_names]
        if self.kind != "flat" or len(self.feature_names) != self.x.shape[1]:
            each = "column" if self.series is None else "channel"
            raise DataError(
                f"Dataset '{self.name}': {len(self.feature_names)} feature names were given for "
                f"{self.kind} data of shape {self.x.shape}; give one name per {each} of flat "
                "data (axis 1)."
            )

    @property
    def sample_shape(self) -> tuple[int, ...]:
        """The shape of one sample: (D,), (C, W) for windows of a series, or (C, H, W)."""
        return tuple(self.x.shape[1:])

    def __len__(self) -> int:
        return int(self.x.shape[0])

    def arrays(self) -> dict[str, np.ndarray]:
        """Every per-sample array by batch field: ``x``, ``y`` when labelled, and the extras."""
        out = {"x": self.x}
        if self.labels is not None:
            out["y"] = self.labels
        out.update(self.extra)
        return out

    def subset(self, idx: Any) -> Dataset:
        """The samples at ``idx`` (an index array, mask or slice), keeping labels and scaling."""
        if isinstance(idx, (int, np.integer)):
            idx = [idx]  # keep the sample axis
        return replace(
            self,
            x=self.x[idx],
            labels=None if self.labels is None else self.labels[idx],
            label_names=None if self.label_names is None else list(self.label_names),
            scaling=copy.deepcopy(self.scaling),
            extra={k: v[idx] for k, v in self.extra.items()},
            feature_names=None if self.feature_names is None else list(self.feature_names),
            series=None if self.series is None else self.series.take(idx),
        )

    def split(self, val_fraction: float = 0.2, seed: int = 0) -> tuple[Dataset, Dataset]:
        """A seeded random (train, validation) split; the validation part holds ``val_fraction``."""
        train, val = split_indices(len(self), val_fraction, seed, self.name)
        return self.subset(train), self.subset(val)

    def meta(self) -> dict:
        """A JSON-able description without the arrays (saved with each run)."""
        return {
            "name": self.name,
            "kind": self.kind,
            "sample_shape": list(self.sample_shape),
            "n": len(self),
            "scaling": copy.deepcopy(self.scaling),
            "source": self.source,
            "has_labels": self.labels is not None,
            "label_names": None if self.label_names is None else list(self.label_names),
            **({} if self.kept_labels is None else {"kept_labels": list(self.kept_labels)}),
            **({} if self.feature_names is None else {"feature_names": list(self.feature_names)}),
            **({} if self.series is None else {"series": self.series.meta()}),
            # An upload in the lab: the user's name for it, its SHA-256 and the server's files.
            **({"upload": copy.deepcopy(up)} if (up := getattr(self, "upload", None)) else {}),
        }


def split_indices(
    n: int, val_fraction: float, seed: int, name: str
) -> tuple[np.ndarray, np.ndarray]:
    """The sorted (train, validation) sample indices of a seeded split of ``n`` samples."""
    if not 0.0 < val_fraction < 1.0:
        raise DataError(
            f"Dataset '{name}': val_fraction must be between 0 and 1, not {val_fraction}."
        )
    n_val = int(round(n * val_fraction))
    if n_val < 1 or n_val > n - 1:
        empty = "validation" if n_val < 1 else "training"
        raise DataError(
            f"Dataset '{name}': splitting {n} samples with val_fraction {val_fraction} "
            f"leaves the {empty} part empty; use more samples or another fraction."
        )
    order = np.random.default_rng(seed).permutation(n)
    return np.sort(order[n_val:]), np.sort(order[:n_val])


# -- chosen classes ---------------------------------------------------------------------------


def label_values(data: Dataset, wanted: Any, what: str = "the classes") -> list[int]:
    """The label values named in ``wanted`` (values, or class names when the data has them),
    each present in ``data``; a one-sentence DataError otherwise."""
    if data.labels is None:
        raise DataError(
            f"Dataset '{data.name}' has no labels, so {what} cannot be chosen; use labelled data "
            "(e.g. digits, a CSV with a label column, or images in class sub-folders)."
        )
    present = sorted(int(v) for v in np.unique(data.labels))
    names = data.label_names or []
    out: list[int] = []
    for item in [wanted] if isinstance(wanted, (int, str, np.integer)) else list(wanted):
        text = str(item).strip()
        if text.lstrip("-").isdigit():
            value = int(text)
        elif text in names:
            value = names.index(text)
        else:
            known = f"its class names are {', '.join(names)}" if names else "its labels are numbers"
            raise DataError(f"Dataset '{data.name}' has no class '{text}'; {known}.")
        if value not in present:
            raise DataError(
                f"Dataset '{data.name}' has no samples labelled {value}; its labels are "
                f"{_ranges(present)}."
            )
        if value not in out:
            out.append(value)
    if not out:
        raise DataError(f"Name at least one class for {what}.")
    return out


def _ranges(values: list[int]) -> str:
    """'0-9' for consecutive values, else '0, 2, 5'."""
    if len(values) > 2 and values == list(range(values[0], values[-1] + 1)):
        return f"{values[0]}-{values[-1]}"
    return ", ".join(map(str, values))


def keep_labels(data: Dataset, wanted: Any) -> Dataset:
    """Only the samples of the chosen classes (the one-class protocol of anomaly detection);
    the kept label values are recorded in ``meta()`` and so in a run trained on them."""
    values = sorted(label_values(data, wanted, "the classes to keep"))
    part = data.subset(np.flatnonzero(np.isin(data.labels, values)))
    part.kept_labels = values
    return part


def load_run_data(
    meta: dict, val_fraction: float = 0.0, seed: int = 0, stream: bool | str = False
) -> tuple[Dataset | StreamingDataset, Dataset | StreamingDataset | None]:
    """A run's data loaded again from the source its description records, with its kept
    classes, split into (training, validation) as the trainer split it (validation None when
    nothing was held out); ``stream`` as in :func:`load_data`."""
    source = str((meta or {}).get("source") or "")
    if not source:
        raise DataError("The run does not record where its data came from; pass the data.")
    shape = list(meta.get("sample_shape") or [])
    size = grayscale = None
    if meta.get("kind") == "image" and len(shape) == 3:
        size = shape[1] if shape[1] == shape[2] else None
        grayscale = shape[0] == 1
    data = load_data(
        source.removeprefix("builtin:"),
        image_size=size,
        grayscale=grayscale,
        series=meta.get("series"),  # windows of a series: cut again as the run recorded
        stream=stream,
    )
    if meta.get("kept_labels") is not None:
        data = keep_labels(data, meta["kept_labels"])
    if shape and list(data.sample_shape) != shape:
        raise DataError(
            f"The run's data {source} now has samples of shape {list(data.sample_shape)}, but "
            f"the run was trained on {shape}."
        )
    if val_fraction > 0:
        return data.split(val_fraction, seed)
    return data, None


# -- scaling --------------------------------------------------------------------------------


def apply_scaling(raw: np.ndarray, scaling: dict) -> np.ndarray:
    """Map raw values to [0, 1] float32 with a recorded scaling; values outside are clipped."""
    method = scaling.get("method", "none")
    x = np.asarray(raw)
    # float64 input keeps float64 arithmetic; everything else is computed in float32
    work = np.float64 if x.dtype == np.float64 else np.float32
    if method == "none":
        out = x.astype(work)
    elif method == "divide":
        out = x.astype(work) / work(scaling["scale"])
    elif method == "minmax":
        lo = np.asarray(scaling["min"], dtype=work)
        hi = np.asarray(scaling["max"], dtype=work)
        if lo.ndim == 1 and x.shape[-1:] != lo.shape:
            raise DataError(
                f"The data has {x.shape[-1:] or 'no'} feature(s) per sample but the scaling "
                f"records {lo.size}; pass data with the same features as the training data."
            )
        span = np.where(hi > lo, hi - lo, work(1.0))  # a constant feature maps to 0
        out = (x.astype(work) - lo) / span
    elif method == windowing.WINDOW_METHOD:  # windows of a series, each on its own
        out = windowing.minmax_each_window(x.astype(work))
    else:
        raise DataError(
            f"Unknown scaling method '{method}'; expected 'none', 'divide', 'minmax' or "
            f"'{windowing.WINDOW_METHOD}'."
        )
    return np.clip(out, 0.0, 1.0).astype(np.float32, copy=False)


def invert_scaling(x01: np.ndarray, scaling: dict) -> np.ndarray:
    """Values in [0, 1] back in the units a recorded scaling mapped from (float32)."""
    method = scaling.get("method", "none")
    x = np.asarray(x01, dtype=np.float32)
    if method == "none":
        return x
    if method == "divide":
        return x * np.float32(scaling["scale"])
    if method == "minmax":
        lo = np.asarray(scaling["min"], dtype=np.float64)
        hi = np.asarray(scaling["max"], dtype=np.float64)
        span = np.where(hi > lo, hi - lo, 1.0)
        return (lo + x.astype(np.float64) * span).astype(np.float32)
    raise DataError(
        f"Values scaled by '{method}' cannot be mapped back to the data's units (each window "
        "was scaled on its own); they stay in [0, 1]."
    )


def choose_scaling(x: np.ndarray, kind: str) -> dict:
    """How to bring raw values to [0, 1]: uint8 / 255, [0, 1] kept, anything else min-max."""
    if x.dtype in (np.uint8, np.bool_):
        return scaling_from_range(x.dtype, kind, None, None)
    if kind == "image":
        return scaling_from_range(x.dtype, kind, np.atleast_1d(x.min()), np.atleast_1d(x.max()))
    return scaling_from_range(x.dtype, kind, x.min(axis=0), x.max(axis=0))


def scaling_from_range(dtype: np.dtype, kind: str, lo: Any, hi: Any) -> dict:
    """:func:`choose_scaling` from the minima and maxima of each column (flat data) or of all
    values (images, one each), which need not be known for uint8 and boolean data."""
    if dtype == np.uint8:
        return {"method": "divide", "scale": 255.0}
    if dtype == np.bool_:
        return {"method": "none"}
    low, high = float(np.min(lo)), float(np.max(hi))
    if low >= 0.0 and high <= 1.0:
        return {"method": "none"}
    if kind == "image":  # one range for all pixels keeps relative brightness between pixels
        return {"method": "minmax", "min": low, "max": high}
    return {
        "method": "minmax",
        "min": np.asarray(lo).astype(np.float64).tolist(),
        "max": np.asarray(hi).astype(np.float64).tolist(),
    }


# -- values that cannot be scaled ---------------------------------------------------------------

FLOAT32_MAX = float(np.finfo(np.float32).max)


def _as_float32(x: Any, where: str) -> np.ndarray:
    """``x`` as float32, refusing finite values that float32 cannot hold (they would become
    infinite and then NaN in training)."""
    arr = np.asarray(x)
    if arr.dtype == np.float32 or arr.dtype.kind != "f":
        return np.asarray(arr, dtype=np.float32)
    with np.errstate(over="ignore", invalid="ignore"):
        out = arr.astype(np.float32)
    overflow = ~np.isfinite(out) & np.isfinite(arr)
    if overflow.any():
        first = [int(i) for i in np.unravel_index(int(np.argmax(overflow)), arr.shape)]
        raise DataError(
            f"{where}: the value at index {first} is {float(arr[tuple(first)]):g}, beyond the "
            f"±{FLOAT32_MAX:.3g} that 32-bit floats hold; scale the data down before loading."
        )
    return out


def check_scalable(x: np.ndarray, where: str, columns: Sequence[str] | None = None) -> None:
    """Refuse raw values that cannot be scaled to [0, 1] in 32-bit floats: NaN or infinite
    values, values beyond ±3.4e38, and a column (each feature of flat data, all values of
    images) whose max - min overflows; the message names the file and the column or index.
    ``columns`` names flat data's columns for the message (default: their array index)."""
    x = np.asarray(x)
    if x.dtype.kind != "f" or x.size == 0:
        return  # booleans and integers (at most ±1.8e19) always scale
    loaders.check_finite(x, where)
    flat = x.ndim == 2
    lo = x.min(axis=0) if flat else np.atleast_1d(x.min())
    hi = x.max(axis=0) if flat else np.atleast_1d(x.max())

    def locate(value: float) -> list[int]:
        return [int(i) for i in np.unravel_index(int(np.argmax(x == value)), x.shape)]

    check_range(lo, hi, where, flat, columns, locate)


def check_range(
    lo: Any,
    hi: Any,
    where: str,
    flat: bool,
    columns: Sequence[str] | None = None,
    locate: Callable[[float], list[int]] | None = None,
) -> None:
    """:func:`check_scalable` from finite float values' minima and maxima, per column when
    ``flat``, else one each; ``locate(value)`` gives the index of a value for the message."""
    lo = np.atleast_1d(np.asarray(lo)).astype(np.float64)
    hi = np.atleast_1d(np.asarray(hi)).astype(np.float64)
    with np.errstate(over="ignore"):
        span = hi - lo
    big = np.maximum(np.abs(lo), np.abs(hi))
    bad = np.flatnonzero((big > FLOAT32_MAX) | ~(span <= FLOAT32_MAX))
    if not bad.size:
        return
    j = int(bad[0])
    low, high = float(lo[j]), float(hi[j])
    extreme = high if abs(high) >= abs(low) else low
    if flat:
        what = columns[j] if columns is not None else f"the column at index [:, {j}]"
    else:
        at = f" (the largest in size at index {locate(extreme)})" if locate else ""
        what = f"its values{at}"
    if big[j] > FLOAT32_MAX:
        problem = f"hold {extreme:g}" if not flat else f"holds {extreme:g}"
        problem += f", beyond the ±{FLOAT32_MAX:.3g} that 32-bit floats hold"
    else:
        problem = (
            f"{'run' if not flat else 'runs'} from {low:g} to {high:g}, a range wider than the "
            f"{FLOAT32_MAX:.3g} that 32-bit floats hold, so it cannot be scaled to [0, 1]"
        )
    raise DataError(f"{where}: {what} {problem}; scale the values down before loading.")


# -- loading --------------------------------------------------------------------------------


def describe_formats() -> str:
    """A human-readable, multi-line description of the accepted data file formats."""
    from .readers import get_readers

    lines = ["Accepted data files (values are scaled to [0, 1] and the scaling is recorded):"]
    lines += [f"  {r.label}: {r.description}" for r in get_readers().values()]
    return "\n".join(lines)


def load_data(
    name_or_path: str | os.PathLike,
    *,
    image_size: int | None = None,
    label_column: str | None = None,
    grayscale: bool | None = None,
    series: Any = None,
    stream: bool | str = False,
) -> Dataset | StreamingDataset:
    """A registered dataset by name, or a user file or folder, scaled to [0, 1].

    ``image_size`` resizes image data to a square of that many pixels and ``grayscale``
    forces one channel (True) or three (False); both leave flat data alone.
    ``label_column`` names the CSV column holding labels.
    ``series`` (an :class:`aelab.series.SeriesOptions`, a dict of its fields, or True for the
    defaults) reads the file as one long time series, rows being time steps, cut into windows;
    for a built-in series it re-cuts the windows.
    ``stream`` True returns an :class:`aelab.streaming.StreamingDataset` whose samples stay on
    disk and are read in batches; "auto" does so only for data over the in-memory limit
    (``AELAB_MAX_DATA_MB``); built-in datasets and series are always loaded into memory.
    """
    from .series import coerce_options, read_series, rewindow

    if not (isinstance(stream, bool) or stream == "auto"):
        raise DataError(f"stream must be True, False or 'auto', not {stream!r}.")

    if image_size is not None and (
        isinstance(image_size, bool)
        or not isinstance(image_size, (int, np.integer))
        or image_size < 1
    ):
        raise DataError(
            f"The image size must be a positive whole number of pixels, not {image_size!r}."
        )
    options = coerce_options(series)
    if label_column is None and isinstance(series, dict):  # a run's record names its column
        label_column = series.get("label_column")
    text = os.fspath(name_or_path)
    datasets = plugins.get_datasets()
    if text in datasets:
        if stream is True:
            raise DataError(
                f"Dataset '{text}' is built in and always loaded into memory, so it cannot be "
                "streamed; only data files can be."
            )
        dataset = _load_registered(datasets[text])
        if options is not None:
            dataset = rewindow(dataset, options)
    else:
        path = Path(text)
        if not path.exists():
            raise DataError(_not_found(text, sorted(datasets)))
        if options is not None:
            if stream is True:
                raise DataError(
                    f"{path}: a time series is cut into windows in memory, so it cannot be "
                    "streamed; load it without stream."
                )
            with np.errstate(over="ignore", invalid="ignore"):  # checked just below
                dataset = read_series(path, options, label_column)
            channels = None if path.suffix.lower() == ".npy" else dataset.feature_names
            check_scalable(
                dataset.series.values,
                str(path),
                None if channels is None else [f"column '{c}'" for c in channels],
            )
        else:
            from .readers import ReadOptions, read_path

            read_options = ReadOptions(label_column, image_size, grayscale)
            dataset = read_path(path, read_options, stream=stream)
    return _adjust_images(dataset, image_size, grayscale)


def _load_registered(entry: Any) -> Dataset:
    """Call a plugin's loader, turning its failures into one-sentence errors."""
    origin = f"Dataset '{entry.name}' from plugin '{entry.plugin}'"
    try:
        dataset = entry.loader()
    except AelabError:
        raise
    except Exception as exc:  # a broken plugin must not crash the lab with a traceback
        raise DataError(f"{origin} failed to load ({type(exc).__name__}: {exc}).") from exc
    check_loaded(dataset, origin)
    return dataset


def check_loaded(dataset: Any, origin: str) -> None:
    """Refuse what a plugin's loader or reader returned unless it is a Dataset in [0, 1]."""
    if not isinstance(dataset, Dataset):
        raise DataError(f"{origin} returned {type(dataset).__name__}, not an aelab.data.Dataset.")
    loaders.check_finite(dataset.x, origin)
    if dataset.x.size and (dataset.x.min() < 0.0 or dataset.x.max() > 1.0):
        raise DataError(
            f"{origin} has values from {dataset.x.min():g} to {dataset.x.max():g}; "
            "its loader must scale them to [0, 1]."
        )


def _not_found(text: str, names: list[str]) -> str:
    builtins = ", ".join(names) or "none"
    accepted = ", ".join(FORMATS)
    if os.sep in text or "/" in text or Path(text).suffix:
        return (
            f"{text}: no such file or folder (built-in datasets are {builtins}); "
            f"accepted file formats are {accepted}."
        )
    return (
        f"Unknown dataset '{text}': built-in datasets are {builtins}, and no file or folder has "
        f"that name; accepted file formats are {accepted}."
    )


def finish(raw: loaders.Raw, path: Path) -> Dataset:
    """Scale a reader's raw values to [0, 1] and wrap them as a Dataset."""
    check_samples(raw.x.shape, path)
    columns = None
    if raw.feature_names is not None:
        columns = [f"column '{name}'" for name in raw.feature_names]
    elif path.suffix.lower() == ".csv" and raw.x.ndim == 2:  # no header: counted from 1
        columns = [f"column {j + 1}" for j in range(raw.x.shape[1])]
    check_scalable(raw.x, str(path), columns)
    scaling = raw.scaling or choose_scaling(raw.x, raw.kind)
    return Dataset(
        name=path.name,
        x=apply_scaling(raw.x, scaling),
        kind=raw.kind,
        labels=raw.labels,
        label_names=raw.label_names,
        scaling=scaling,
        source=str(path.resolve()),
        feature_names=raw.feature_names,
    )


def check_samples(shape: tuple[int, ...], path: Path) -> None:
    """Refuse data of fewer than 2 samples, or whose samples hold no values."""
    n = shape[0]
    if n < 2:
        raise DataError(f"{path}: has {n} sample(s); at least 2 are needed to train and validate.")
    if math.prod(shape) == 0:
        raise DataError(
            f"{path}: has shape {tuple(shape)}, so its samples hold no values; "
            "save at least one feature per sample."
        )


def _adjust_images(dataset: Any, image_size: int | None, grayscale: bool | None) -> Any:
    """Resize or change the channel count of image data when asked; flat data passes through."""
    if dataset.kind != "image":
        return dataset
    if dataset.streamed:  # done per batch as samples are read
        return dataset.adjusted(image_size, grayscale)
    x = adjust_images(dataset.x, image_size, grayscale)
    return dataset if x is dataset.x else replace(dataset, x=x)


def adjust_images(x: np.ndarray, image_size: int | None, grayscale: bool | None) -> np.ndarray:
    """Images (N, C, H, W) in [0, 1] resized to ``image_size`` and converted to one channel
    (``grayscale`` True) or three (False) when asked; ``x`` itself when nothing changes."""
    if grayscale is True and x.shape[1] == 3:
        # ITU-R 601-2 luma, the weights Pillow's "L" conversion uses
        x = np.tensordot(np.array([0.299, 0.587, 0.114], np.float32), x, axes=(0, 1))[:, None]
    elif grayscale is False and x.shape[1] == 1:
        x = np.repeat(x, 3, axis=1)
    if image_size is not None and x.shape[2:] != (image_size, image_size):
        x = np.clip(image_loaders.resize_images(x, image_size), 0.0, 1.0)
    return x
