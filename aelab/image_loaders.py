"""Readers for image data: folders of PNG/JPEG files and MNIST IDX files (raw or .gz).

Like :mod:`aelab.loaders`, each returns raw arrays in aelab's layout or raises a DataError whose
one sentence starts with the file it is about.
"""

from __future__ import annotations

import gzip
import math
import re
import zlib
from pathlib import Path

import numpy as np

from .errors import DataError
from .loaders import (
    Raw,
    check_size,
    interpret_array,
    labels_from_values,
    max_bytes,
)

IMAGE_EXTS = (".png", ".jpg", ".jpeg")
IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_WIDE_GRAY_MODES = ("I", "I;16", "I;16B", "I;16L", "I;16N", "F")
_GRAY_MODES = {"1", "L", "LA", "La", *_WIDE_GRAY_MODES}
EIGHT_BIT = {"method": "divide", "scale": 255.0}


# -- folders of images --------------------------------------------------------------------


def _is_image(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in IMAGE_EXTS and not path.name.startswith(".")


def image_files(folder: Path) -> tuple[list[Path], np.ndarray | None, list[str] | None]:
    """The images directly in the folder, or in class sub-folders (which then give labels)."""
    where = str(folder)
    top = sorted(p for p in folder.iterdir() if _is_image(p))
    classes = sorted(
        d
        for d in folder.iterdir()
        if d.is_dir() and not d.name.startswith(".") and any(_is_image(p) for p in d.iterdir())
    )
    if top and classes:
        raise DataError(
            f"{where}: has images both directly inside it and in sub-folders such as "
            f"'{classes[0].name}'; put every image in a class sub-folder, or none."
        )
    if top:
        return top, None, None
    if not classes:
        raise DataError(
            f"{where}: contains no .png, .jpg or .jpeg images, neither directly nor in "
            "class sub-folders."
        )
    files, labels = [], []
    for label, folder_of_class in enumerate(classes):
        members = sorted(p for p in folder_of_class.iterdir() if _is_image(p))
        files += members
        labels += [label] * len(members)
    return files, np.array(labels, dtype=np.int64), [d.name for d in classes]


def _unreadable(path: Path) -> DataError:
    return DataError(
        f"{path}: cannot be read as an image (it may be corrupt or truncated); "
        "replace or remove this file."
    )


def probe_image(path: Path) -> tuple[tuple[int, int], str]:
    """Size and mode from the image header, without decoding the pixels."""
    from PIL import Image

    try:
        with Image.open(path) as img:
            return img.size, img.mode
    except Image.DecompressionBombError:
        raise _too_large(path) from None
    except Exception:  # Pillow raises many types (OSError, SyntaxError)
        raise _unreadable(path) from None


def _too_large(path: Path) -> DataError:
    from PIL import Image

    return DataError(
        f"{path}: is an image of more than {2 * Image.MAX_IMAGE_PIXELS:,} pixels, too large to "
        "decode safely (it may be a decompression bomb); resize or remove this file."
    )


def decode_image(path: Path, gray: bool) -> tuple[np.ndarray, str]:
    """Decoded pixels as float32 (H, W, C) on the 8-bit scale 0..255, and the file's mode."""
    from PIL import Image

    try:
        with Image.open(path) as img:
            img.load()
            if img.mode in _WIDE_GRAY_MODES:
                values = np.asarray(img, dtype=np.float32)
                if img.mode != "F":
                    values = values / 257.0  # 16-bit to the 8-bit scale, so one scaling fits all
                values = np.clip(values, 0.0, 255.0)[..., None]
                return (values if gray else np.repeat(values, 3, axis=2)), img.mode
            mode = img.mode
            converted = np.asarray(img.convert("L" if gray else "RGB"), dtype=np.float32)
    except Image.DecompressionBombError:
        raise _too_large(path) from None
    except Exception:
        raise _unreadable(path) from None
    return (converted[..., None] if gray else converted), mode


def is_gray_mode(mode: str) -> bool:
    """Whether a Pillow mode holds one channel (the folder reader then reads it as grey)."""
    return mode in _GRAY_MODES


def resize_images(x: np.ndarray, size: int) -> np.ndarray:
    """Resize (N, C, H, W) float images to size x size with Pillow's antialiased bilinear filter."""
    from PIL import Image

    out = np.empty((*x.shape[:2], size, size), dtype=np.float32)
    for i in range(x.shape[0]):
        for c in range(x.shape[1]):
            channel = Image.fromarray(np.ascontiguousarray(x[i, c], dtype=np.float32))
            out[i, c] = np.asarray(channel.resize((size, size), Image.Resampling.BILINEAR))
    return out


def _mixed_sizes(folder: Path, files: list[Path], sizes: list[tuple[int, int]]) -> None:
    """Raise the error for images of different sizes, naming two that differ."""
    other = next(i for i, size in enumerate(sizes) if size != sizes[0])
    (w1, h1), (w2, h2) = sizes[0], sizes[other]
    raise DataError(
        f"{folder}: images have different sizes ({files[0].relative_to(folder)} is {w1}x{h1}, "
        f"{files[other].relative_to(folder)} is {w2}x{h2}); pass an image size to resize them all."
    )


def read_image_folder(folder: Path, image_size: int | None, grayscale: bool | None) -> Raw:
    """PNG/JPEG images, gray or RGB, optionally resized; class sub-folders give labels."""
    where = str(folder)
    files, labels, names = image_files(folder)
    check_size(where, sum(p.stat().st_size for p in files), "folder's image data")
    probes = [probe_image(p) for p in files]
    gray = all(is_gray_mode(mode) for _, mode in probes) if grayscale is None else grayscale
    sizes = {size for size, _ in probes}
    if image_size is None and len(sizes) > 1:
        _mixed_sizes(folder, files, [size for size, _ in probes])
    channels = 1 if gray else 3
    height, width = (image_size, image_size) if image_size else probes[0][0][::-1]
    check_size(where, len(files) * channels * height * width * 4, "decoded image data")
    x = np.empty((len(files), channels, height, width), dtype=np.float32)
    for i, path in enumerate(files):
        pixels = decode_image(path, gray)[0].transpose(2, 0, 1)
        x[i] = resize_images(pixels[None], image_size)[0] if image_size else pixels
    return Raw(x, "image", labels, names, dict(EIGHT_BIT))


# -- MNIST IDX ----------------------------------------------------------------------------


def is_idx_name(name: str) -> bool:
    """Whether a name looks like IDX: ``*-ubyte``, ``*.idx``, ``*.idx3``, each maybe ``.gz``."""
    base = name.lower().removesuffix(".gz")
    return base.endswith("ubyte") or re.search(r"(^|[-_.])idx\d*$", base) is not None


def _read_capped(path: Path) -> bytes:
    """The file's bytes, decompressed if gzipped, refusing more than the size limit."""
    if not path.name.lower().endswith(".gz"):
        return path.read_bytes()
    limit = max_bytes()
    try:
        with gzip.open(path, "rb") as f:
            data = f.read(limit + 1)  # read one byte past the limit to detect oversize
    except (OSError, EOFError, zlib.error):
        raise DataError(f"{path}: is not a valid gzip file (it may be truncated).") from None
    check_size(str(path), len(data), "decompressed file")
    return data


def read_idx_array(path: Path) -> np.ndarray:
    """Parse an IDX file: two zero bytes, a type byte, a dimension count, big-endian sizes, data."""
    where = str(path)
    data = _read_capped(path)
    shape, dtype, offset = idx_layout(data, len(data), where)
    arr = np.frombuffer(data, dtype=dtype, count=math.prod(shape), offset=offset).reshape(shape)
    return arr.astype(dtype.newbyteorder("="))  # a writable copy in native byte order


def idx_layout(head: bytes, size: int, where: str) -> tuple[tuple[int, ...], np.dtype, int]:
    """Shape, big-endian dtype and data offset of an IDX file of ``size`` bytes whose first
    bytes are ``head`` (the 4-byte magic and the sizes suffice), checking the data's length."""
    if len(head) < 4 or head[0] != 0 or head[1] != 0 or head[2] not in IDX_DTYPES or head[3] == 0:
        raise DataError(
            f"{where}: does not start with an IDX magic number; expected an MNIST-style IDX file "
            "such as train-images-idx3-ubyte."
        )
    ndim, dtype = head[3], np.dtype(IDX_DTYPES[head[2]])
    offset = 4 + 4 * ndim
    if size < offset:
        raise DataError(f"{where}: is truncated inside its header ({size} bytes).")
    shape = tuple(int(d) for d in np.frombuffer(head, dtype=">u4", count=ndim, offset=4))
    expected, available = math.prod(shape) * dtype.itemsize, size - offset
    if available < expected:
        raise DataError(
            f"{where}: is truncated; its header declares shape {shape} ({expected} bytes of data) "
            f"but only {available} bytes follow."
        )
    if available > expected:
        raise DataError(
            f"{where}: has {available - expected} bytes beyond the shape {shape} its header "
            "declares; the file is corrupt or not an IDX file."
        )
    return shape, dtype, offset


def idx_labels_path(path: Path) -> Path | None:
    """The labels file beside an images file: train-images-idx3-ubyte -> train-labels-idx1-ubyte."""
    name = path.name
    base = name[:-3] if name.lower().endswith(".gz") else name
    swaps = [("images", "labels"), ("idx3", "idx1")]
    both = base
    for old, new in swaps:
        both = both.replace(old, new)
    for candidate in dict.fromkeys([both, *(base.replace(o, n) for o, n in swaps)]):
        if candidate == base:
            continue
        for option in (candidate, candidate + ".gz"):
            if (path.parent / option).is_file():
                return path.parent / option
    return None


def read_idx(path: Path) -> Raw:
    """MNIST-style IDX images (or vectors), with labels from the matching labels file."""
    where = str(path)
    arr = read_idx_array(path)
    check_idx_images(arr.shape, where)
    x, kind = interpret_array(arr, where)
    return Raw(x, kind, idx_labels(path, len(x)))


def check_idx_images(shape: tuple[int, ...], where: str) -> None:
    """Refuse a 1-D IDX file: it holds labels, not samples."""
    if len(shape) == 1:
        raise DataError(
            f"{where}: is a 1-D IDX file, which looks like labels; pass the matching images file."
        )


def idx_labels(path: Path, n: int) -> np.ndarray | None:
    """The int64 labels of an IDX images file from its companion labels file, if there is one."""
    labels_path = idx_labels_path(path)
    if labels_path is None:
        return None
    where_labels = f"{labels_path} (the labels for {path.name})"
    return labels_from_values(read_idx_array(labels_path), where_labels, n)[0]
