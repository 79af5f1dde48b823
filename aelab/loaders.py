"""Readers for user data files: each returns raw arrays in aelab's layout or raises a DataError.

Every error message is one sentence that starts with the file it is about. Scaling to [0, 1]
happens in :mod:`aelab.data`; a reader only fixes the scaling where the format dictates it.
"""

from __future__ import annotations

import csv
import math
import os
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import numpy as np

from .errors import DataError

LABEL_COLUMNS = ("label", "labels", "y", "target", "class")
NPZ_X_KEYS = ("x", "data")
NPZ_Y_KEYS = ("y", "labels")
# IDX type byte -> big-endian numpy dtype (http://yann.lecun.com/exdb/mnist/ layout)
# Pillow modes holding one channel of more than 8 bits; everything else converts via "L"/"RGB".


@dataclass
class Raw:
    """Values read from a file, in aelab's layout but not yet scaled to [0, 1]."""

    x: np.ndarray  # (N, D) for "flat", (N, C, H, W) for "image"
    kind: str
    labels: np.ndarray | None = None
    label_names: list[str] | None = None
    scaling: dict | None = None  # set when the format fixes it; otherwise chosen from the values
    feature_names: list[str] | None = None  # a table's column names, when its file has them


# -- limits and shared checks ----------------------------------------------------------------


def max_bytes() -> int:
    """The largest data size aelab will read, from ``AELAB_MAX_DATA_MB`` (default 1024 MB)."""
    text = os.environ.get("AELAB_MAX_DATA_MB", "1024")
    try:
        megabytes = float(text)
    except ValueError:
        raise DataError(f"AELAB_MAX_DATA_MB must be a number of megabytes, got '{text}'.") from None
    return int(megabytes * 1024 * 1024)


def _mb(nbytes: float) -> str:
    return f"{nbytes / 2**20:.1f} MB"


def check_size(where: str, nbytes: int, what: str = "file") -> None:
    """Refuse data larger than :func:`max_bytes` before reading it."""
    limit = max_bytes()
    if nbytes > limit:
        raise DataError(
            f"{where}: the {what} is {_mb(nbytes)}, over the {_mb(limit)} limit; "
            "set AELAB_MAX_DATA_MB to a larger number of megabytes to load it."
        )


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def check_finite(x: np.ndarray, where: str) -> None:
    """Refuse NaN or infinite values, saying how many there are and where the first one is."""
    if x.dtype.kind != "f":
        return
    finite = np.isfinite(x)
    if finite.all():
        return
    bad = int(finite.size - np.count_nonzero(finite))
    first = [int(i) for i in np.unravel_index(int(np.argmin(finite)), x.shape)]
    raise nonfinite_error(where, bad, first)


def nonfinite_error(where: str, bad: int, first: list[int]) -> DataError:
    """The error for ``bad`` NaN or infinite values, the first at index ``first``."""
    verb = "is" if bad == 1 else "are"
    return DataError(
        f"{where}: {_plural(bad, 'value')} {verb} NaN or infinite, the first at index {first}; "
        "remove or replace them before loading."
    )


def check_numeric_dtype(dtype: np.dtype, where: str, allow_text: bool = False) -> None:
    """Accept booleans, integers, floats (and text if allowed); refuse objects, never unpickling."""
    if dtype.hasobject:
        raise DataError(
            f"{where}: holds a Python object array, which only unpickling could read, and aelab "
            "never loads pickles; save a numeric array instead."
        )
    if dtype.kind not in ("biufUS" if allow_text else "biuf"):
        raise DataError(
            f"{where}: has dtype {dtype}, which is not numeric; save integers or floats."
        )


def interpret_array(arr: np.ndarray, where: str) -> tuple[np.ndarray, str]:
    """Map an array's shape to aelab's layout: (N, D) flat, or (N, C, H, W) images, C = 1 or 3."""
    check_finite(arr, where)  # before any transpose, so the index matches the user's array
    layout = array_layout(arr.shape, where)
    return to_layout(arr, layout), "flat" if layout == "flat" else "image"


def array_layout(shape: tuple[int, ...], where: str) -> str:
    """How a stored array's shape maps to aelab's layout: "flat" (N, D), "nhw" (grey images),
    "nchw" or "nhwc"; a DataError for any other shape."""
    if len(shape) == 2:
        return "flat"
    if len(shape) == 3:
        return "nhw"
    if len(shape) == 4 and shape[1] in (1, 3):
        return "nchw"
    if len(shape) == 4 and shape[3] in (1, 3):
        return "nhwc"
    if len(shape) == 4:
        raise DataError(
            f"{where}: has shape {shape}, but 4-D images need 1 or 3 channels, either in "
            "axis 1 (N, C, H, W) or in the last axis (N, H, W, C)."
        )
    raise DataError(
        f"{where}: has shape {shape}; expected (samples, features) for flat data or "
        "(N, H, W), (N, C, H, W) or (N, H, W, C) for images."
    )


def to_layout(arr: np.ndarray, layout: str) -> np.ndarray:
    """Samples of a stored array (layout from :func:`array_layout`) in aelab's layout."""
    if layout == "nhw":
        return arr[:, None]
    if layout == "nhwc":
        return np.ascontiguousarray(arr.transpose(0, 3, 1, 2))
    return arr


def labels_from_values(values: np.ndarray, where: str, n: int) -> tuple[np.ndarray, list | None]:
    """Turn one label per sample (whole numbers or names) into int64 ids and optional names."""
    values = np.asarray(values)
    if values.ndim != 1 or len(values) != n:
        raise DataError(
            f"{where}: has labels of shape {values.shape} but the data has {_plural(n, 'sample')}; "
            "give exactly one label per sample."
        )
    if values.dtype.kind in "US":
        names, ids = np.unique(values.astype(str), return_inverse=True)
        return ids.astype(np.int64), [str(name) for name in names]
    if values.dtype.kind in "biu":
        return values.astype(np.int64), None
    if values.dtype.kind == "f":
        whole = np.isfinite(values) & (values == np.round(values))
        if not whole.all():
            i = int(np.argmin(whole))
            raise DataError(
                f"{where}: label {i} is {values[i]}, but labels must be whole numbers or names."
            )
        return values.astype(np.int64), None
    raise DataError(f"{where}: labels have dtype {values.dtype}; use whole numbers or names.")


# -- .npy and .npz ---------------------------------------------------------------------------


def _npy_header(f: IO[bytes], where: str) -> tuple[tuple[int, ...], np.dtype]:
    """Shape and dtype from a .npy header, read without loading (or unpickling) any data."""
    try:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            shape, _, dtype = np.lib.format.read_array_header_1_0(f)
        else:
            shape, _, dtype = np.lib.format.read_array_header_2_0(f)
    except Exception:  # numpy raises ValueError, EOFError or SyntaxError for a bad header
        raise DataError(
            f"{where}: is not a valid .npy file (its header cannot be read); "
            "save arrays with numpy.save."
        ) from None
    return tuple(shape), dtype


def read_npy(path: Path) -> Raw:
    """One array saved with ``numpy.save``; never unpickled."""
    x, kind = interpret_array(load_npy_array(path), str(path))
    return Raw(x, kind)


def load_npy_array(path: Path) -> np.ndarray:
    """The numeric array of a .npy file, its header and length checked first; never unpickled."""
    check_npy_file(path)
    try:
        arr = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError):
        raise DataError(f"{path}: cannot be read as a .npy array; it may be corrupt.") from None
    return arr


def check_npy_file(path: Path) -> tuple[tuple[int, ...], np.dtype]:
    """Shape and dtype of a .npy file, refusing pickles, bad headers, non-numeric dtypes and
    truncated data without reading the data."""
    where = str(path)
    with open(path, "rb") as f:
        if f.read(1) == b"\x80":  # the opcode every pickle since protocol 2 starts with
            raise DataError(
                f"{where}: is a Python pickle, not a .npy array, and aelab never loads pickles; "
                "save arrays with numpy.save."
            )
        f.seek(0)
        shape, dtype = _npy_header(f, where)
        check_numeric_dtype(dtype, where)
        expected = math.prod(shape) * dtype.itemsize
        available = path.stat().st_size - f.tell()
    if available < expected:
        raise DataError(
            f"{where}: is truncated; its header declares shape {shape} ({expected} bytes of data) "
            f"but only {available} bytes follow."
        )
    return shape, dtype


def _npz_headers(path: Path) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """Shape and dtype of every array in an .npz archive, in archive order, checking sizes."""
    where = str(path)
    headers = {}
    try:
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                if not info.filename.endswith(".npy"):
                    continue
                key = info.filename[: -len(".npy")]
                # zipfile never inflates past the declared size, so this bounds memory use
                check_size(f"{where} (array '{key}')", info.file_size, "array")
                with archive.open(info) as member:
                    headers[key] = _npy_header(member, f"{where} (array '{key}')")
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError):
        raise DataError(
            f"{where}: is not a valid .npz archive (it may be truncated); "
            "save arrays with numpy.savez."
        ) from None
    return headers


def _npz_data_key(headers: dict, where: str) -> str:
    for key in NPZ_X_KEYS:
        if key in headers:
            return key
    others = [k for k in headers if k not in (*NPZ_Y_KEYS, "label_names")]
    if not others:
        raise DataError(f"{where}: holds no data array; store the samples under the key 'x'.")
    # One array, or numpy.savez(f, X, y)'s positional arr_0, arr_1…: the first is the data.
    if len(others) == 1 or others[0] == "arr_0":
        return others[0]
    raise DataError(
        f"{where}: holds the arrays {', '.join(repr(k) for k in others)} and none is named 'x'; "
        "store the samples under 'x' (and labels under 'y')."
    )


def _npz_array(npz: np.lib.npyio.NpzFile, key: str, where: str) -> np.ndarray:
    try:
        return npz[key]
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, zlib.error):
        raise DataError(
            f"{where}: array '{key}' cannot be read; the archive may be corrupt."
        ) from None


def read_npz(path: Path) -> Raw:
    """Samples under ``x`` (or ``data``, the only array, or savez's ``arr_0``), labels under
    ``y`` or ``labels``."""
    where = str(path)
    headers = _npz_headers(path)
    xkey = _npz_data_key(headers, where)
    ykey = next((k for k in NPZ_Y_KEYS if k in headers), None)
    check_numeric_dtype(headers[xkey][1], f"{where} (array '{xkey}')")
    if ykey is not None:  # labels may be names
        check_numeric_dtype(headers[ykey][1], f"{where} (array '{ykey}')", allow_text=True)
    with np.load(path, allow_pickle=False) as npz:
        x, kind = interpret_array(_npz_array(npz, xkey, where), f"{where} (array '{xkey}')")
        raw = Raw(x, kind)
        if ykey is not None:
            values = _npz_array(npz, ykey, where)
            raw.labels, raw.label_names = labels_from_values(
                values, f"{where} (array '{ykey}')", len(x)
            )
        names = headers.get("label_names")  # optional names for whole-number labels
        if raw.labels is not None and raw.label_names is None and names and names[1].kind == "U":
            raw.label_names = [str(s) for s in _npz_array(npz, "label_names", where).ravel()]
    return raw


# -- CSV ----------------------------------------------------------------------------------


def _csv_rows(path: Path) -> list[tuple[int, list[str]]]:
    """Non-blank rows with the line number each ends on."""
    where = str(path)
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            first = f.readline()
            f.seek(0)
            # a file with no comma but semicolons or tabs uses those as separators
            delimiter = next((d for d in ",;\t" if d in first), ",")
            reader = csv.reader(f, delimiter=delimiter)
            return [(reader.line_num, row) for row in reader if any(c.strip() for c in row)]
    except UnicodeDecodeError:
        raise DataError(f"{where}: is not UTF-8 text; save the CSV file as UTF-8.") from None
    except csv.Error as exc:
        raise DataError(f"{where}: cannot be parsed as CSV ({exc}).") from None


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _label_index(header: list[str] | None, label_column: str | None, where: str) -> int | None:
    """The label column's position: the one asked for, or one with a conventional name."""
    if header is None:
        if label_column is not None:
            raise DataError(
                f"{where}: has no header row, so the label column '{label_column}' cannot be "
                "found; add a header row naming the columns."
            )
        return None
    lowered = [h.strip().lower() for h in header]
    if label_column is not None:
        wanted = label_column.strip().lower()
        if wanted not in lowered:
            raise DataError(
                f"{where}: has no column named '{label_column}'; "
                f"its columns are {', '.join(header)}."
            )
        return lowered.index(wanted)
    return next((i for i, h in enumerate(lowered) if h in LABEL_COLUMNS), None)


def _csv_numbers(
    rows: list,
    cols: list[int],
    header: list[str] | None,
    where: str,
    besides: str | None = "the label column",
) -> np.ndarray:
    """The numeric cells as float64, or an error naming the first bad row and column."""
    cells = [[row[j] for j in cols] for _, row in rows]
    try:
        return np.array(cells, dtype=np.float64)
    except ValueError:
        pass
    for line, row in rows:  # slow path only to name the offending cell
        for j in cols:
            if not _is_number(row[j]):
                column = f"'{header[j]}'" if header else str(j + 1)
                problem = (
                    "is empty" if not row[j].strip() else f"has the non-numeric value '{row[j]}'"
                )
                rule = f"every value except {besides}" if besides else "every value"
                raise DataError(
                    f"{where}: row {line}, column {column} {problem}; {rule} must be a number."
                )
    return np.array([[float(row[j]) for j in cols] for _, row in rows], dtype=np.float64)


def _csv_check_finite(
    x: np.ndarray, rows: list, cols: list, header: list | None, where: str
) -> None:
    finite = np.isfinite(x)
    if finite.all():
        return
    bad = int(finite.size - np.count_nonzero(finite))
    i, j = np.unravel_index(int(np.argmin(finite)), x.shape)
    column = f"'{header[cols[j]]}'" if header else str(cols[j] + 1)
    verb = "is" if bad == 1 else "are"
    raise DataError(
        f"{where}: {_plural(bad, 'value')} {verb} NaN or infinite, the first at row {rows[i][0]}, "
        f"column {column}; remove or fill them before loading."
    )


def _csv_labels(texts: list[str], where: str) -> tuple[np.ndarray, list[str] | None]:
    """Whole-number labels stay numbers; anything else becomes named classes."""
    stripped = [t.strip() for t in texts]
    try:
        values = np.array(stripped, dtype=np.float64)
        if np.isfinite(values).all() and (values == np.round(values)).all():
            return values.astype(np.int64), None
    except ValueError:
        pass
    return labels_from_values(np.array(stripped), where, len(stripped))


def read_csv(path: Path, label_column: str | None = None) -> Raw:
    """Numeric columns with an optional header row and an optional label column."""
    where = str(path)
    rows = _csv_rows(path)
    if not rows:
        raise DataError(f"{where}: has no rows; it must hold at least 2 rows of numbers.")
    header = None
    if not any(_is_number(c) for c in rows[0][1]):  # a first row without any number is a header
        header = [c.strip() for c in rows[0][1]]
    data = rows[1:] if header is not None else rows
    if not data:
        raise DataError(
            f"{where}: has a header row but no data rows; add at least 2 rows of numbers."
        )
    ref_line, ref = rows[0][0], rows[0][1]
    for line, row in data:
        if len(row) != len(ref):
            raise DataError(
                f"{where}: row {line} has {len(row)} values but row {ref_line} has {len(ref)}; "
                "every row needs the same number of columns."
            )
    label_idx = _label_index(header, label_column, where)
    cols = [j for j in range(len(ref)) if j != label_idx]
    if not cols:
        raise DataError(f"{where}: has only a label column; at least one numeric column is needed.")
    x = _csv_numbers(data, cols, header, where)
    _csv_check_finite(x, data, cols, header, where)
    raw = Raw(x, "flat", feature_names=None if header is None else [header[j] for j in cols])
    if label_idx is not None:
        texts = [row[label_idx] for _, row in data]
        raw.labels, raw.label_names = _csv_labels(texts, f"{where} (column '{header[label_idx]}')")
    return raw
