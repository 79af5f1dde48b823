"""Files and folders that appear whole, and locks that die with their holder.

The run store and the exporter rely on the same few guarantees: a file is written beside its
target and renamed over it (after an fsync), a folder is swapped into place whole, and a lock is
an ``flock`` the kernel releases when its holder dies, so a ``kill -9`` leaves no stale lock.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import functools
import os
import re
import secrets
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

try:  # POSIX; elsewhere a lock is the exclusive creation of its file
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]


# -- files ---------------------------------------------------------------------------------
def exports_root() -> Path:
    """The folder exports live in: ``AELAB_EXPORTS_DIR`` or ./exports (``aelab.export`` has it
    too; it lives here so that the lab can serve the folder without importing torch and onnx)."""
    return Path(os.environ.get("AELAB_EXPORTS_DIR") or "exports")


def fsync_dir(folder: Path) -> None:
    """Make the renames inside ``folder`` durable (a no-op where folders cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # Windows cannot open a folder; its renames are durable on their own
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_bytes_atomic(path: Path, data: bytes, *, sync_dir: bool = True) -> None:
    """Write ``data`` to a temporary file beside ``path``, fsync it, then rename it over ``path``.

    The temporary file is ``.<name>.tmp-<hex>``; it is removed again if writing fails.
    """
    tmp = path.with_name(f".{path.name}.tmp-{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o644)
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    if sync_dir:
        fsync_dir(path.parent)


def sync_folder(folder: Path) -> None:
    """fsync every file of a folder and the folder itself (before it is renamed into place)."""
    for path in folder.iterdir():
        if path.is_file():
            with open(path, "rb") as fh:
                os.fsync(fh.fileno())
    fsync_dir(folder)


# -- locks -----------------------------------------------------------------------------------
class FileLock:
    """An exclusive lock on a lock file, which is removed again on release.

    With ``fcntl`` it is an ``flock``: the kernel drops it when its holder dies, so a killed
    process never leaves a stale lock, and two opens in one process conflict too. A lock file
    removed and re-created between our open and our lock is noticed (its inode changed) and
    opened again. Without ``fcntl`` the lock is the exclusive creation of the file.
    """

    def __init__(self, path: Path, fd: int | None):
        self.path, self._fd = path, fd

    @classmethod
    def acquire(cls, path: str | os.PathLike, blocking: bool = False) -> FileLock | None:
        """The lock, or None when another holder has it (``blocking`` waits; fcntl only)."""
        path = Path(path)
        if fcntl is None:  # pragma: no cover - Windows
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                return None
            return cls(path, fd)
        while True:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
            except OSError as exc:
                os.close(fd)
                if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    return None
                raise
            try:
                same = os.path.samestat(os.fstat(fd), os.stat(path))
            except FileNotFoundError:
                same = False
            if same:
                return cls(path, fd)
            os.close(fd)  # the file we locked was released and removed meanwhile

    @property
    def held(self) -> bool:
        """Whether this lock is still held."""
        return self._fd is not None

    def write(self, text: str) -> None:
        """Replace the lock file's content (its holder's pid, for messages)."""
        os.lseek(self._fd, 0, os.SEEK_SET)
        os.ftruncate(self._fd, 0)
        os.write(self._fd, text.encode())

    def release(self) -> None:
        """Remove the lock file and unlock it; safe to call twice."""
        if self._fd is None:
            return
        try:
            if fcntl is None or os.path.samestat(os.fstat(self._fd), os.stat(self.path)):
                if fcntl is None:
                    os.close(self._fd)  # Windows cannot remove an open file
                    self._fd = -1
                os.unlink(self.path)  # still locked: nobody can be holding this file next
        except OSError:
            pass
        if self._fd >= 0:
            os.close(self._fd)  # closing drops the flock
        self._fd = None


def read_holder(path: Path) -> str:
    """What a lock file says about its holder (its pid), or '' when it cannot be read."""
    try:
        return path.read_text(encoding="utf-8", errors="replace")[:32].strip()
    except OSError:
        return ""


def is_held(path: str | os.PathLike) -> bool:
    """Whether a lock file is locked right now, by any process (this one too)."""
    if fcntl is None:  # pragma: no cover - Windows
        return Path(path).exists()
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        # A shared probe: it fails against a holder's exclusive lock, never against another probe.
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError as exc:
        return exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES)
    finally:
        os.close(fd)
    return False


# -- folders that are replaced whole ------------------------------------------------------------
# A folder ``dest`` is built as ``.<name>.tmp-*`` beside it and swapped in; where folders cannot
# be swapped atomically the old one is first renamed to ``.<name>.old-<ns>-<pid>``. A crash can
# leave these behind; ``tidy_folder`` restores or deletes them, under ``folder_lock``.
_LEFTOVER = re.compile(r"\.(.+)\.(?:lock|tmp-[^/]*|old-[^/]*)")


@contextlib.contextmanager
def folder_lock(dest: Path) -> Iterator[None]:
    """Serialise the writers of one destination folder (waiting for one in progress)."""
    if fcntl is None:  # pragma: no cover - Windows: no waiting lock; writers must not overlap
        yield
        return
    lock = FileLock.acquire(dest.parent / f".{dest.name}.lock", blocking=True)
    try:
        yield
    finally:
        lock.release()


def _leftovers(parent: Path, name: str, kind: str) -> list[Path]:
    """``.<name>.tmp-*`` or ``.<name>.old-*`` folders beside the destination, oldest first."""
    prefix = f".{name}.{kind}-"
    try:
        found = [p for p in parent.iterdir() if p.name.startswith(prefix) and p.is_dir()]
    except OSError:
        return []
    return sorted(found, key=lambda p: _age(p.name[len(prefix) :]))


def _age(suffix: str) -> tuple[int, str]:
    head = suffix.split("-", 1)[0]
    return (int(head) if head.isdigit() else 0, suffix)


def tidy_folder(dest: Path, complete: str) -> None:
    """Repair what an interrupted replacement of ``dest`` left (hold its ``folder_lock``): if a
    crash came between moving the old folder aside and moving the new one in, the newest
    set-aside folder holding the file ``complete`` is put back; stale temporary and set-aside
    folders are deleted."""
    asides = _leftovers(dest.parent, dest.name, "old")
    if asides and not dest.exists() and not dest.is_symlink():
        whole = [a for a in asides if (a / complete).is_file()]
        if whole:
            os.rename(whole[-1], dest)
            asides.remove(whole[-1])
    for folder in [*asides, *_leftovers(dest.parent, dest.name, "tmp")]:
        shutil.rmtree(folder, ignore_errors=True)


def sweep_folder(root: Path, complete: str, skip: str = "") -> None:
    """``tidy_folder`` every destination in ``root`` with leftovers that nobody is writing."""
    if fcntl is None:  # pragma: no cover - without locks a write in progress looks stale
        return
    names = set()
    for entry in root.iterdir():
        match = _LEFTOVER.fullmatch(entry.name)
        if match and match.group(1) != skip:
            names.add(match.group(1))
    for name in sorted(names):
        lock = FileLock.acquire(root / f".{name}.lock")
        if lock is None:
            continue  # being written right now
        try:
            tidy_folder(root / name, complete)
        finally:
            lock.release()


def replace_folder(tmp: Path, dest: Path) -> None:
    """Put the folder ``tmp`` in place as ``dest``; a replaced ``dest`` is deleted only after.

    On Linux the two folders swap in one atomic step, so ``dest`` is never missing; elsewhere
    the old one is renamed aside first, and a crash between the two renames is repaired by
    ``tidy_folder``.
    """
    if dest.exists() or dest.is_symlink():
        if exchange(tmp, dest):
            fsync_dir(dest.parent)
            shutil.rmtree(tmp, ignore_errors=True)  # tmp now holds the previous folder
            return
        old = dest.with_name(f".{dest.name}.old-{time.time_ns()}-{os.getpid()}")
        os.rename(dest, old)
        try:
            os.rename(tmp, dest)
        except BaseException:
            os.rename(old, dest)
            raise
        fsync_dir(dest.parent)
        shutil.rmtree(old, ignore_errors=True)
        return
    os.rename(tmp, dest)
    fsync_dir(dest.parent)


_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


@functools.lru_cache(maxsize=1)
def renameat2() -> Any:
    """Linux's renameat2 from the C library, or None where there is none."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        fn = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):  # a C library older than glibc 2.28
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    fn.restype = ctypes.c_int
    return fn


def exchange(a: Path, b: Path) -> bool:
    """Swap two existing paths atomically; False where the system or file system cannot."""
    fn = renameat2()
    if fn is None:
        return False
    if fn(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.EPERM):
        return False
    raise OSError(err, os.strerror(err), str(b))
