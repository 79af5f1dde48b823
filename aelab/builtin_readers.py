"""aelab's own file formats, registered through ``register_readers`` like any plugin's readers.

.npy and .npz files are never unpickled; every error is one sentence naming the file.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from . import image_loaders, loaders, streaming
from .data import Dataset, finish
from .hookspecs import hookimpl
from .readers import Reader, ReadOptions


def read_npy(path: Path, options: ReadOptions) -> Dataset:
    """One array saved with ``numpy.save``."""
    return finish(loaders.read_npy(path), path)


def read_npz(path: Path, options: ReadOptions) -> Dataset:
    """Samples and optional labels saved with ``numpy.savez``."""
    return finish(loaders.read_npz(path), path)


def read_csv(path: Path, options: ReadOptions) -> Dataset:
    """A table of numbers, one sample per row, its header naming the features."""
    return finish(loaders.read_csv(path, options.label_column), path)


def read_image_folder(path: Path, options: ReadOptions) -> Dataset:
    """PNG/JPEG images in a folder, or in class sub-folders."""
    raw = image_loaders.read_image_folder(path, options.image_size, options.grayscale)
    return finish(raw, path)


def read_idx(path: Path, options: ReadOptions) -> Dataset:
    """MNIST-style IDX images, labelled by the matching labels file."""
    return finish(image_loaders.read_idx(path), path)


def _is_idx(path: Path) -> bool:
    return path.is_file() and image_loaders.is_idx_name(path.name)


READERS = [
    Reader(
        "npy",
        "one NumPy array: (N, D) flat data, or images as (N, H, W), (N, C, H, W) or "
        "(N, H, W, C) with C = 1 or 3; never unpickled",
        read_npy,
        suffixes=(".npy",),
        stream=streaming.open_npy,
    ),
    Reader(
        "npz",
        "samples under 'x' (or 'data', the only array, or arr_0), labels under 'y' or 'labels'; "
        "never unpickled",
        read_npz,
        suffixes=(".npz",),
    ),
    Reader(
        "csv",
        "numeric columns with an optional header row naming the features; a column named label, "
        "labels, y, target or class (or the one given as the label column) holds labels",
        read_csv,
        suffixes=(".csv",),
    ),
    Reader(
        "images",
        "grayscale or RGB, all one size unless an image size is given; images in class "
        "sub-folders are labelled by folder name",
        read_image_folder,
        can_read=Path.is_dir,
        label="folder of .png/.jpg/.jpeg images",
        stream=streaming.open_image_folder,
    ),
    Reader(
        "idx",
        "e.g. train-images-idx3-ubyte.gz; labels come from the matching "
        "train-labels-idx1-ubyte file when it is present",
        read_idx,
        can_read=_is_idx,
        label="MNIST IDX (.idx, -ubyte, optionally .gz)",
        stream=streaming.open_idx,
    ),
]


@hookimpl
def register_readers(register: Callable) -> None:
    """Register .npy, .npz, .csv, image folders and MNIST IDX."""
    for reader in READERS:
        register(reader)
