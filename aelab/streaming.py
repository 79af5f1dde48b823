"""Streaming datasets: samples that stay on disk and are read in batches, for data that does not
fit in memory.

A :class:`StreamingDataset` holds paths, offsets and index arrays, never the samples: it maps its
file lazily in each process (DataLoader workers included) and pickles small. Values are scaled
exactly as the in-memory readers scale them, so ``read(idx)`` equals ``load_data(path).x[idx]``.
Only numpy and Pillow are used here, so worker processes and the runtime need no torch.
"""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any

import numpy as np

from . import data, image_loaders, loaders
from .errors import DataError

# Raw bytes per chunk of the one pass that scaling statistics need: this bounds its memory.
CHUNK_BYTES = 16 << 20


class NotStreamable(DataError):
    """A file of a streamable format that cannot be read in batches (a compressed one, say)."""


class _ArrayFile:
    """A memory-mapped array: a .npy file (through np.load), or raw data at an offset (IDX)."""

    # A batch is a copy out of the page cache: cheaper than handing it over from a reader
    # process, so such data is read in the training process by default.
    cheap_reads = True

    def __init__(
        self, path: Path, shape: tuple, dtype: np.dtype, layout: str, offset: int | None = None
    ):
        self.where = str(path)  # as the user named it, for messages
        self.path = str(path.resolve())  # workers may run in another folder
        self.shape = tuple(int(d) for d in shape)
        self.dtype = dtype  # the dtype the in-memory reader would hold, so scaling matches
        self.layout = layout  # loaders.array_layout
        self.offset = offset  # None for .npy
        self.kind = "flat" if layout == "flat" else "image"
        self.n = self.shape[0]
        self.scaling: dict | None = None
        self._array: np.ndarray | None = None

    def __getstate__(self) -> dict:
        if self.scaling is None:  # compute it once here rather than in every worker
            self.prepare()
        return {**self.__dict__, "_array": None}  # a mapping never travels: each process maps

    @property
    def sample_shape(self) -> tuple[int, ...]:
        """One sample's shape in aelab's layout."""
        shape = self.shape
        if self.layout == "nhw":
            return (1, *shape[1:])
        if self.layout == "nhwc":
            return (shape[3], shape[1], shape[2])
        return shape[1:]

    def array(self) -> np.ndarray:
        """The file's array, mapped read-only on first use in this process."""
        if self._array is None:
            try:
                if self.offset is None:
                    self._array = np.load(self.path, mmap_mode="r", allow_pickle=False)
                else:
                    big = self.dtype.newbyteorder(">")  # IDX stores big-endian values
                    self._array = np.memmap(
                        self.path, dtype=big, mode="r", offset=self.offset, shape=self.shape
                    )
            except (ValueError, OSError, EOFError):
                raise DataError(
                    f"{self.where}: cannot be mapped for reading; it may be corrupt or gone."
                ) from None
        return self._array

    def raw(self, rows: np.ndarray) -> np.ndarray:
        """Unscaled values of sorted, distinct rows, in aelab's layout."""
        arr = self.array()
        if rows.size and rows[-1] - rows[0] + 1 == rows.size:  # a run of rows: one slice
            part = arr[int(rows[0]) : int(rows[-1]) + 1]
        else:
            part = arr[rows]
        return loaders.to_layout(np.asarray(part, dtype=self.dtype), self.layout)

    def prepare(self) -> None:
        """Choose the scaling as the in-memory path would, in one chunked pass when the values'
        range is needed, refusing values that cannot be scaled with the same messages."""
        if self.scaling is not None:
            return
        flat = self.kind == "flat"
        if self.dtype in (np.uint8, np.bool_):
            self.scaling = data.scaling_from_range(self.dtype, self.kind, None, None)
            return
        arr, floats, step = self.array(), self.dtype.kind == "f", self._chunk_rows()
        lo = hi = first = None
        bad = 0
        for start in range(0, self.n, step):
            chunk = arr[start : start + step]
            if floats:
                finite = np.isfinite(chunk)
                count = int(finite.size - np.count_nonzero(finite))
                if count and first is None:
                    first = np.unravel_index(int(np.argmin(finite)), chunk.shape)
                    first = [start + int(first[0]), *(int(i) for i in first[1:])]
                bad += count
            if bad:
                continue  # only counting the bad values now
            low, high = (
                (chunk.min(axis=0), chunk.max(axis=0)) if flat else (chunk.min(), chunk.max())
            )
            lo = low if lo is None else np.minimum(lo, low)
            hi = high if hi is None else np.maximum(hi, high)
        if bad:
            raise loaders.nonfinite_error(self.where, bad, first)
        if floats:
            data.check_range(lo, hi, self.where, flat, None, self._locate)
        self.scaling = data.scaling_from_range(self.dtype, self.kind, lo, hi)

    def _chunk_rows(self) -> int:
        return max(1, CHUNK_BYTES // max(1, math.prod(self.shape[1:]) * self.dtype.itemsize))

    def _locate(self, value: float) -> list[int]:
        """The first index of ``value`` in aelab's layout (only to name it in an error)."""
        arr, step = self.array(), self._chunk_rows()
        for start in range(0, self.n, step):
            hit = loaders.to_layout(arr[start : start + step], self.layout) == value
            if hit.any():
                at = np.unravel_index(int(np.argmax(hit)), hit.shape)
                return [start + int(at[0]), *(int(i) for i in at[1:])]
        return []


class _ImageFolder:
    """Image files decoded one by one, exactly as the in-memory folder reader decodes them."""

    kind = "image"
    cheap_reads = False  # decoding is the work reader processes take off the training process

    def __init__(self, folder: Path, files: list[Path], gray: bool, size: tuple, options: Any):
        self.where = str(folder)
        self.path = str(folder.resolve())
        self.files = [str(p.relative_to(folder)) for p in files]  # relative: pickles smaller
        self.gray = gray
        self.height, self.width = size  # of the first image, or the size asked for
        self.image_size = options.image_size
        # Grey chosen from the first image alone: a colour image later would be read otherwise
        # in memory (where every image is probed first), so it is refused instead.
        self.grey_from_first = options.grayscale is None and gray
        self.n = len(files)
        self.scaling = dict(image_loaders.EIGHT_BIT)

    @property
    def sample_shape(self) -> tuple[int, ...]:
        """One sample's shape (C, H, W)."""
        return (1 if self.gray else 3, self.height, self.width)

    def prepare(self) -> None:
        """Nothing to do: 8-bit pixels are divided by 255."""

    def raw(self, rows: np.ndarray) -> np.ndarray:
        """Decoded (and resized when asked) pixels on the 8-bit scale, (len(rows), C, H, W)."""
        out = np.empty((len(rows), *self.sample_shape), dtype=np.float32)
        first = Path(self.where) / self.files[0]
        for i, row in enumerate(rows):
            name = Path(self.where) / self.files[row]
            pixels, mode = image_loaders.decode_image(Path(self.path) / self.files[row], self.gray)
            if self.grey_from_first and not image_loaders.is_gray_mode(mode):
                raise DataError(
                    f"{name}: is a colour image, but the folder was opened as grey from its "
                    f"first image {first}; pass grayscale (True or False) to stream a folder of "
                    "mixed grey and colour images."
                )
            pixels = pixels.transpose(2, 0, 1)
            if self.image_size:
                out[i] = image_loaders.resize_images(pixels[None], self.image_size)[0]
            elif pixels.shape[1:] != (self.height, self.width):
                raise DataError(
                    f"{name}: is {pixels.shape[2]}x{pixels.shape[1]} pixels, but the folder was "
                    f"opened for {self.width}x{self.height} images like its first, {first}; "
                    "pass an image size to resize them all."
                )
            else:
                out[i] = pixels
        return out


class StreamingDataset:
    """Samples scaled to [0, 1] that stay on disk and are read in batches, with labels in memory;
    the attributes of an :class:`aelab.data.Dataset` but ``x``, and a view for each subset."""

    streamed = True

    def __init__(
        self,
        name: str,
        source: Any,
        labels: np.ndarray | None = None,
        label_names: list[str] | None = None,
    ):
        self.name = name
        self.kind = source.kind
        self.source = source.path
        self.labels = None if labels is None else np.asarray(labels, dtype=np.int64)
        self.label_names = None if label_names is None else [str(n) for n in label_names]
        self.kept_labels: list[int] | None = None
        self.feature_names = None
        self.series = None
        self.extra: dict[str, np.ndarray] = {}  # streamed data has no further fields
        self._source = source
        self._index: np.ndarray | None = None  # the file's rows this view holds; None: all
        self._image_size: int | None = None  # per-sample resize, as load_data does in memory
        self._grayscale: bool | None = None
        if self.labels is not None and self.labels.shape != (source.n,):
            raise DataError(
                f"{source.where}: has labels of shape {self.labels.shape} but "
                f"{source.n} samples; give exactly one label per sample."
            )

    def __repr__(self) -> str:
        return (
            f"StreamingDataset(name={self.name!r}, kind={self.kind!r}, n={len(self)}, "
            f"sample_shape={self.sample_shape}, source={self.source!r})"
        )

    def __len__(self) -> int:
        return self._source.n if self._index is None else len(self._index)

    @property
    def cheap_reads(self) -> bool:
        """Whether reading a batch costs less than a reader process's hand-over (memory maps)."""
        return bool(getattr(self._source, "cheap_reads", False))

    @property
    def scaling(self) -> dict:
        """How raw values became [0, 1], as in ``Dataset.scaling``."""
        self._source.prepare()
        return self._source.scaling

    @property
    def sample_shape(self) -> tuple[int, ...]:
        """The shape of one sample: (D,) or (C, H, W)."""
        shape = self._source.sample_shape
        if self.kind != "image":
            return shape
        channels, height, width = shape  # changed as data.adjust_images changes them
        if self._grayscale is not None and channels in (1, 3):
            channels = 1 if self._grayscale else 3
        if self._image_size is not None:
            height = width = self._image_size
        return (channels, height, width)

    @property
    def nbytes_float32(self) -> int:
        """The bytes the samples would take in memory as float32."""
        return len(self) * math.prod(self.sample_shape) * 4

    def prepare(self) -> StreamingDataset:
        """Make the pass over the values that scaling needs now (checking them); returns self."""
        self._source.prepare()
        return self

    def _positions(self, idx: Any) -> np.ndarray:
        """``idx`` (indices, a mask or a slice into this view) as an int64 index array."""
        n = len(self)
        if isinstance(idx, slice):
            return np.arange(*idx.indices(n), dtype=np.int64)
        arr = np.asarray(idx)
        if arr.dtype == np.bool_:
            if arr.shape != (n,):
                raise IndexError(f"A mask of shape {arr.shape} cannot select from {n} samples.")
            return np.flatnonzero(arr)
        arr = arr.reshape(-1)  # one index keeps the sample axis, as Dataset.subset does
        if arr.size == 0:
            return np.empty(0, dtype=np.int64)
        if arr.dtype.kind not in "iu":
            raise IndexError(f"Sample indices must be whole numbers, not {arr.dtype}.")
        arr = arr.astype(np.int64)
        out = np.flatnonzero((arr < -n) | (arr >= n))
        if out.size:
            raise IndexError(f"Index {arr[out[0]]} is out of range for {n} samples.")
        return np.where(arr < 0, arr + n, arr)

    def _view(self, rows: np.ndarray | None, pos: np.ndarray | None) -> StreamingDataset:
        """A view sharing this one's source (its mapping and scaling) over ``rows``."""
        view = object.__new__(StreamingDataset)
        view.__dict__.update(self.__dict__)
        view._index = rows
        if pos is not None:
            view.labels = None if self.labels is None else self.labels[pos]
        view.label_names = None if self.label_names is None else list(self.label_names)
        view.kept_labels = None if self.kept_labels is None else list(self.kept_labels)
        view.extra = {}
        return view

    def _rows(self, pos: np.ndarray) -> np.ndarray:
        return pos if self._index is None else self._index[pos]

    def read(self, idx: Any) -> np.ndarray:
        """The samples at ``idx`` (indices into this view), float32 in [0, 1], in that order."""
        rows = self._rows(self._positions(idx))
        scaling = self.scaling
        # Sorted, distinct rows read a mapped file front to back; then back into idx's order.
        distinct, back = np.unique(rows, return_inverse=True)
        x = data.apply_scaling(self._source.raw(distinct), scaling)[back.reshape(-1)]
        if self.kind == "image":
            x = data.adjust_images(x, self._image_size, self._grayscale)
        return np.ascontiguousarray(x, dtype=np.float32)

    def arrays_for(self, idx: Any) -> dict[str, np.ndarray]:
        """The batch at ``idx``: ``x``, and ``y`` when labelled."""
        pos = self._positions(idx)
        out = {"x": self.read(pos)}
        if self.labels is not None:
            out["y"] = self.labels[pos]
        return out

    def subset(self, idx: Any) -> StreamingDataset:
        """A view of the samples at ``idx`` (an index array, mask or slice), keeping labels."""
        pos = self._positions(idx)
        return self._view(self._rows(pos), pos)

    def split(
        self, val_fraction: float = 0.2, seed: int = 0
    ) -> tuple[StreamingDataset, StreamingDataset]:
        """The (train, validation) views ``Dataset.split`` would choose for the same data."""
        train, val = data.split_indices(len(self), val_fraction, seed, self.name)
        return self.subset(train), self.subset(val)

    def adjusted(self, image_size: int | None, grayscale: bool | None) -> StreamingDataset:
        """A view whose images are resized and given one or three channels per batch, as
        ``load_data`` does to images in memory."""
        if self.kind != "image" or (image_size is None and grayscale is None):
            return self
        view = self._view(self._index, None)
        view._image_size, view._grayscale = image_size, grayscale
        return view

    def take(self, idx: Any) -> data.Dataset:
        """The samples at ``idx`` read into an in-memory Dataset."""
        pos = self._positions(idx)
        return data.Dataset(
            name=self.name,
            x=self.read(pos),
            kind=self.kind,
            labels=None if self.labels is None else self.labels[pos],
            label_names=None if self.label_names is None else list(self.label_names),
            scaling=copy.deepcopy(self.scaling),
            source=self.source,
            kept_labels=None if self.kept_labels is None else list(self.kept_labels),
        )

    def head(self, n: int) -> data.Dataset:
        """The first ``n`` samples (or all, if fewer) in memory."""
        return self.take(np.arange(min(max(int(n), 0), len(self))))

    def meta(self) -> dict:
        """A JSON-able description, as ``Dataset.meta()``, marked as streamed."""
        return {**data.Dataset.meta(self), "streamed": True}


# -- opening files (header reads only; the readers' ``stream``) -----------------------------


def open_npy(path: Path, options: Any = None) -> StreamingDataset:
    """A .npy file, memory-mapped; never unpickled."""
    shape, dtype = loaders.check_npy_file(path)
    layout = loaders.array_layout(shape, str(path))
    data.check_samples(shape, path)
    return StreamingDataset(path.name, _ArrayFile(path, shape, dtype, layout))


def open_idx(path: Path, options: Any = None) -> StreamingDataset:
    """An uncompressed MNIST IDX file, memory-mapped, labelled by its labels file."""
    where = str(path)
    if path.name.lower().endswith(".gz"):
        raise NotStreamable(
            f"{where}: is compressed with gzip, so its samples cannot be read from disk in "
            "batches; decompress it (gunzip) to stream it."
        )
    with open(path, "rb") as f:
        head = f.read(4 + 4 * 255)  # the magic and up to 255 sizes
    shape, dtype, offset = image_loaders.idx_layout(head, path.stat().st_size, where)
    image_loaders.check_idx_images(shape, where)
    layout = loaders.array_layout(shape, where)
    labels = image_loaders.idx_labels(path, shape[0])
    data.check_samples(shape, path)
    # Values in native byte order, as the in-memory reader holds them, so the scaling matches.
    native = _ArrayFile(path, shape, dtype.newbyteorder("="), layout, offset)
    return StreamingDataset(path.name, native, labels)


def open_image_folder(folder: Path, options: Any) -> StreamingDataset:
    """PNG/JPEG images in a folder or class sub-folders; only the first image is probed."""
    files, labels, names = image_loaders.image_files(folder)
    (width, height), mode = image_loaders.probe_image(files[0])
    grey = image_loaders.is_gray_mode(mode) if options.grayscale is None else options.grayscale
    size = (options.image_size,) * 2 if options.image_size else (height, width)
    source = _ImageFolder(folder, files, bool(grey), size, options)
    data.check_samples((len(files), *source.sample_shape), folder)
    return StreamingDataset(folder.name, source, labels, names)
