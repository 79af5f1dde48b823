"""Test helpers for data files and error messages: IDX and image writers, the one-sentence check."""

from __future__ import annotations

import gzip
import re
import struct
from pathlib import Path

import numpy as np
import pytest
from PIL import Image


def one_sentence(exc_info: pytest.ExceptionInfo, *fragments: str) -> str:
    """The error's message is one sentence holding every fragment."""
    message = str(exc_info.value)
    assert "\n" not in message and message.endswith("."), message
    assert not re.search(r"[.;:]\s+[A-Z][a-z]", message), f"more than one sentence: {message}"
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    return message


def write_idx(path: Path, arr: np.ndarray, type_code: int = 0x08, truncate: int = 0) -> Path:
    """Write an IDX file (gzipped when the name ends in .gz), optionally cut short."""
    big_endian = {0x08: ">u1", 0x0B: ">i2", 0x0D: ">f4"}[type_code]
    header = struct.pack(">BBBB", 0, 0, type_code, arr.ndim) + struct.pack(
        f">{arr.ndim}I", *arr.shape
    )
    data = header + arr.astype(big_endian).tobytes()
    if truncate:
        data = data[:-truncate]
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "wb") as f:
        f.write(data)
    return path


def write_png(path: Path, pixels: np.ndarray, mode: str | None = None) -> Path:
    """Save uint8 pixels (H, W) or (H, W, 3) as an image file (its format by the name)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    img = Image.fromarray(pixels.astype(np.uint8))
    (img.convert(mode) if mode else img).save(path)
    return path
