"""Files the applications write (scores, codes, samples): complete or absent, never overwritten
unless asked."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..applications import ApplicationError


def _umask() -> int:
    """The process's umask; read from /proc where it can be, since setting it to read it back
    would briefly change it for every thread."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _exists(out: Path) -> ApplicationError:
    return ApplicationError(f"{out} exists; pass --force to replace it, or name another path.")


def check_out(out: Path, force: bool) -> None:
    """Refuse an output that exists (unless forced), before any work is done."""
    if out.exists() and not force:
        raise _exists(out)


@contextmanager
def atomic_output(out: Path, force: bool = False, folder: bool = False) -> Iterator[Path]:
    """A temporary path beside ``out`` (a file, or a folder with ``folder``) to write into; when
    the block ends without error it takes ``out``'s place, and is removed otherwise. Without
    ``force`` an ``out`` that appeared meanwhile is never replaced."""
    out = Path(out)
    check_out(out, force)
    if out.exists() and out.is_dir() != folder:  # --force replaces like with like, only
        have, want = ("a folder", "a file") if out.is_dir() else ("a file", "a folder")
        raise ApplicationError(f"{out} is {have}, but this writes {want}; name another path.")
    out.parent.mkdir(parents=True, exist_ok=True)
    if folder:
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    else:
        fd, name = tempfile.mkstemp(prefix=f".{out.name}.tmp-", suffix=out.suffix, dir=out.parent)
        os.close(fd)
        tmp = Path(name)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; a written file gets the usual mode
    try:
        yield tmp
        if folder or force:
            if out.exists() and force:  # the new one is complete before the old one goes
                shutil.rmtree(out) if out.is_dir() else out.unlink()
            elif out.exists():
                raise _exists(out)
            os.replace(tmp, out)
        else:
            try:
                os.link(tmp, out)  # fails if the file appeared meanwhile: nothing is overwritten
            except FileExistsError:
                raise _exists(out) from None
            except OSError:  # a filesystem without hard links
                if out.exists():
                    raise _exists(out) from None
                os.replace(tmp, out)
    finally:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.unlink(missing_ok=True)


def write_png(sample: Any, path: Path) -> None:
    """One (C, H, W) sample with values in [0, 1] as a greyscale (one channel) or RGB PNG."""
    import numpy as np
    from PIL import Image

    img = np.round(np.clip(sample, 0, 1).transpose(1, 2, 0) * 255).astype(np.uint8)
    if img.shape[2] == 1:
        Image.fromarray(img[:, :, 0], "L").save(path, format="PNG")
    else:
        Image.fromarray(img, "RGB").save(path, format="PNG")


def write_pngs(samples: Any, folder: Path) -> None:
    """Each sample of a batch as ``00000.png``, ``00001.png``, … in ``folder``."""
    for i, s in enumerate(samples):
        write_png(s, folder / f"{i:05d}.png")


def save_npy(path: Path, x: Any) -> None:
    """One array as a .npy file."""
    import numpy as np

    with open(path, "wb") as fh:
        np.save(fh, x)


def written(out: Path) -> list[Path]:
    """The files an output is: those of a folder, sorted, or the file itself."""
    return sorted(out.iterdir()) if out.is_dir() else [out]
