"""What the lab's upload box holds, turned into one dataset named as the user named it.

gradio keeps every uploaded file under a random folder of its own (``<upload dir>/<hash>/<name>``)
and knows the name the user gave it. :func:`load` reads one data file, several images (one image
folder, no labels) or a ``.zip`` (class sub-folders become labels, as for a folder given to the
CLI), unpacking zips safely into the session's :class:`UploadArea`, and rewrites every error so
that it names the user's file, never the server's path. :func:`data_mismatch` says why a run
cannot continue on other data (the CLI's ``--resume`` says it the same way).

Nothing here imports gradio.
"""

from __future__ import annotations

import atexit
import hashlib
import os
import re
import shutil
import tempfile
import threading
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from ..data import Dataset, load_data
from ..errors import AelabError, DataError
from ..image_loaders import IMAGE_EXTS
from ..loaders import max_bytes

MAX_MEMBERS = 100_000  # entries of a zip the lab unpacks; more is refused before unpacking
_CHUNK = 1 << 20
_S_IFMT, _S_IFLNK = 0o170000, 0o120000
# Advice for the CLI that the lab cannot follow, said the lab's way.
_LAB_HINTS = {"pass an image size to resize them all": "resize them to one size before uploading"}


_ROOT_PREFIX = "aelab-uploads-"  # + the server's process id: its sessions' folders are inside
_root: Path | None = None
_root_lock = threading.Lock()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # another user's process
        return True
    return True


def process_root() -> Path:
    """This server's folder of session upload folders (removed when it exits); the folders of
    servers that ended without removing theirs (killed) are removed on first use."""
    global _root
    with _root_lock:
        if _root is None or not _root.is_dir():
            tmp = Path(tempfile.gettempdir())
            for stale in tmp.glob(f"{_ROOT_PREFIX}*"):
                pid = stale.name.removeprefix(_ROOT_PREFIX)
                if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
                    shutil.rmtree(stale, ignore_errors=True)
            _root = tmp / f"{_ROOT_PREFIX}{os.getpid()}"
            _root.mkdir(mode=0o700, exist_ok=True)
            atexit.register(shutil.rmtree, _root, ignore_errors=True)
        return _root


@dataclass(frozen=True)
class UploadedFile:
    """One uploaded file: where the server keeps it, and the name the user knows it by."""

    path: str
    name: str


def files_of(upload: Any) -> list[UploadedFile]:
    """The files of an upload box value: None, a path, a FileData dict or object, or a list."""
    if upload is None:
        return []
    out = []
    for item in upload if isinstance(upload, (list, tuple)) else [upload]:
        if isinstance(item, UploadedFile):
            out.append(item)
            continue
        if isinstance(item, dict):
            path, name = item.get("path"), item.get("orig_name")
        elif isinstance(item, str):
            path, name = item, getattr(item, "orig_name", None)
        else:  # gradio's FileData
            path, name = getattr(item, "path", None), getattr(item, "orig_name", None)
        if path:
            out.append(UploadedFile(str(path), Path(str(name or Path(str(path)).name)).name))
    return out


def sha256_file(path: str | Path) -> str:
    """The SHA-256 of a file's bytes, in hex."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def fingerprint(files: list[UploadedFile]) -> str:
    """SHA-256 of the one file (a data file or a zip), or of each image's hash and name."""
    if len(files) == 1:
        return sha256_file(files[0].path)
    lines = sorted(f"{sha256_file(f.path)}  {f.name}\n" for f in files)
    return hashlib.sha256("".join(lines).encode()).hexdigest()


def _mb(nbytes: float) -> str:
    return f"{nbytes / 2**20:,.0f} MB" if nbytes >= 2**20 else f"{nbytes / 2**10:,.0f} kB"


def _is_image(name: str) -> bool:
    return Path(name).suffix.lower() in IMAGE_EXTS


def _is_zip(name: str) -> bool:
    return Path(name).suffix.lower() == ".zip"


@dataclass
class Prepared:
    """An upload made ready to read: ``target`` (a file or folder) for :func:`load_data`, the
    user's ``name`` for it, run.json's ``record`` of it, and the server paths to hide."""

    target: Path
    name: str
    record: dict[str, Any]
    aliases: list[tuple[str, str]] = field(default_factory=list)

    def user_text(self, text: str) -> str:
        """``text`` with every server path replaced by the user's name for it."""
        for server, user in sorted(self.aliases, key=lambda a: -len(a[0])):
            text = text.replace(server, user)
        for cli, lab in _LAB_HINTS.items():
            text = text.replace(cli, lab)
        names = [self.name, *(f["name"] for f in self.record.get("files", []))]
        if not any(n in text for n in names):
            text = f"{self.name}: {text[:1].lower()}{text[1:]}"
        return text


class UploadArea:
    """A session's temporary folder for what it unpacked from its uploads: one upload at a
    time, removed when another is prepared and when the session ends (:meth:`cleanup`)."""

    def __init__(self) -> None:
        self.lock = threading.RLock()  # one load at a time per session
        self._tmp: tempfile.TemporaryDirectory | None = None
        self._key: tuple | None = None
        self._prepared: Prepared | None = None

    def __deepcopy__(self, memo: dict) -> UploadArea:  # gr.State copies its initial value
        return UploadArea()

    def prepare(self, files: list[UploadedFile]) -> Prepared:
        """The upload ready to read (prepared again only when the files change)."""
        key = tuple(files)
        with self.lock:
            if key != self._key or self._prepared is None:
                self.cleanup()
                self._prepared, self._key = _prepare(self, files), key
            return self._prepared

    def folder(self, name: str) -> Path:
        """A new empty folder inside this session's temporary folder."""
        if self._tmp is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="session-", dir=process_root())
        path = Path(self._tmp.name) / name
        path.mkdir()
        return path

    @property
    def path(self) -> Path | None:
        """The session's temporary folder, while it exists."""
        return None if self._tmp is None else Path(self._tmp.name)

    def cleanup(self) -> None:
        """Remove everything unpacked so far."""
        with self.lock:
            if self._tmp is not None:
                self._tmp.cleanup()
            self._tmp, self._key, self._prepared = None, None, None


def _prepare(area: UploadArea, files: list[UploadedFile]) -> Prepared:
    if not files:
        raise DataError("Choose a file in the upload box first, or pick a built-in dataset.")
    for f in files:
        if not Path(f.path).is_file():
            raise DataError(
                f"{f.name}: the uploaded file is no longer on the server; upload it again."
            )
    record = {
        "name": files[0].name if len(files) == 1 else f"{len(files)} uploaded images",
        "sha256": fingerprint(files),
        "files": [{"path": f.path, "name": f.name} for f in files],
    }
    if len(files) == 1 and _is_zip(files[0].name):
        return _prepare_zip(area, files[0], record)
    if len(files) == 1 and not _is_image(files[0].name):
        path = Path(files[0].path)
        aliases = [(str(path), files[0].name), (str(path.resolve()), files[0].name)]
        return Prepared(path, files[0].name, {**record, "what": "file"}, aliases)
    others = [f.name for f in files if not _is_image(f.name)]
    if others:
        listed = ", ".join(others[:3]) + (f" and {len(others) - 3} more" if len(others) > 3 else "")
        raise DataError(
            f"{listed}: several files are read together only when all are images (.png, .jpg, "
            ".jpeg); keep one data file or one .zip in the upload box (a .zip with class "
            "sub-folders gives labels)."
        )
    folder = area.folder("images")
    taken: set[str] = set()
    for f in files:
        stem, suffix, name, n = Path(f.name).stem, Path(f.name).suffix, Path(f.name).name, 1
        while name.lower() in taken:  # two files of the same name from different folders
            n += 1
            name = f"{stem} ({n}){suffix}"
        taken.add(name.lower())
        _link(Path(f.path), folder / name)
    aliases = _folder_aliases(folder, record["name"], "")
    return Prepared(folder, record["name"], {**record, "what": "images"}, aliases)


def _link(source: Path, target: Path) -> None:
    try:
        target.hardlink_to(source)
    except OSError:  # another file system
        shutil.copyfile(source, target)


def _folder_aliases(folder: Path, name: str, inside: str) -> list[tuple[str, str]]:
    out = []
    for path in dict.fromkeys([str(folder), str(folder.resolve())]):
        out += [(path + "/", inside), (path, name)]
    return out


def _prepare_zip(area: UploadArea, upload: UploadedFile, record: dict) -> Prepared:
    name = upload.name
    root = area.folder("zip")
    extract(Path(upload.path), root, name)
    top = root
    while True:
        entries = sorted(top.iterdir())
        if len(entries) == 1 and entries[0].is_dir():  # a zipped folder: read what it holds
            top = entries[0]
            continue
        break
    record = {**record, "what": "zip"}
    if len(entries) == 1 and not _is_image(entries[0].name):  # one data file in the zip
        return Prepared(entries[0], name, record, _folder_aliases(top, name, f"{name}/"))
    return Prepared(top, name, record, _folder_aliases(top, name, f"{name}/"))


def _member_path(member: str, name: str) -> PurePosixPath:
    """The member's path inside the zip, refusing one that would land outside it."""
    text = member.replace("\\", "/")
    parts = PurePosixPath(text).parts
    if text.startswith("/") or re.match(r"^[A-Za-z]:", text) or ".." in parts or "\0" in text:
        raise DataError(
            f"{name}: holds '{member}', a path that leads outside the zip (absolute, or with "
            "'..'); the lab refuses such zips, so zip the data folder again."
        )
    return PurePosixPath(*parts) if parts else PurePosixPath(".")


def _skipped(path: PurePosixPath) -> bool:
    """macOS resource forks and hidden files (.DS_Store) are not data."""
    return any(p.startswith(".") or p == "__MACOSX" for p in path.parts)


def extract(zip_path: Path, dest: Path, name: str) -> None:
    """Unpack a zip into ``dest`` and nowhere else: no absolute or '..' paths, no links, at
    most :data:`MAX_MEMBERS` entries and ``AELAB_MAX_DATA_MB`` of content (a zip bomb is
    refused with one sentence, before or while unpacking)."""
    limit = max_bytes()
    bomb = (
        f"{name}: unpacks to more than the {_mb(limit)} the lab reads (set by AELAB_MAX_DATA_MB)"
        ", so it was not unpacked; upload less data."
    )
    try:
        zf = zipfile.ZipFile(zip_path)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError):
        raise DataError(
            f"{name}: is not a valid zip file (it may be truncated or of another format)."
        ) from None
    with zf:
        infos = zf.infolist()
        if len(infos) > MAX_MEMBERS:
            raise DataError(
                f"{name}: holds {len(infos):,} entries, more than the {MAX_MEMBERS:,} the lab "
                "unpacks; upload fewer files."
            )
        members = []
        for info in infos:
            path = _member_path(info.filename, name)
            if info.is_dir() or _skipped(path) or path == PurePosixPath("."):
                continue
            if (info.external_attr >> 16) & _S_IFMT == _S_IFLNK:
                raise DataError(
                    f"{name}: holds '{info.filename}', a symbolic link; the lab unpacks only "
                    "plain files, so zip the files themselves."
                )
            if info.flag_bits & 0x1:
                raise DataError(
                    f"{name}: '{info.filename}' is encrypted; upload a zip without a password."
                )
            members.append((info, path))
        if not members:
            raise DataError(
                f"{name}: the zip holds no files; put images in it (in class sub-folders for "
                "labels) or one data file."
            )
        if sum(info.file_size for info, _ in members) > limit:
            raise DataError(bomb)
        root = dest.resolve()
        written = 0
        try:
            for info, path in members:
                target = root.joinpath(*path.parts)
                if not target.resolve().is_relative_to(root):  # belt and braces
                    raise DataError(
                        f"{name}: holds '{info.filename}', a path that leads outside the zip; "
                        "the lab refuses such zips."
                    )
                target.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(info) as src, open(target, "wb") as out:
                    while chunk := src.read(_CHUNK):
                        written += len(chunk)
                        if written > limit:  # sizes in the zip's directory can lie
                            raise DataError(bomb)
                        out.write(chunk)
        except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError):
            raise DataError(
                f"{name}: '{info.filename}' cannot be unpacked (the zip is damaged or uses an "
                "unsupported compression); zip the files again."
            ) from None
        except OSError:
            raise DataError(
                f"{name}: '{info.filename}' cannot be written on the server (a name it refuses, "
                "or no space left); rename the file or upload less data."
            ) from None


def load(area: UploadArea, files: list[UploadedFile], series: Any = None) -> Dataset:
    """The uploaded data as a Dataset named as the user named it, its errors naming the user's
    file; ``data.upload`` (recorded with a run) holds the name, SHA-256 and server files."""
    with area.lock:
        prepared = area.prepare(files)
        try:
            data = load_data(prepared.target, series=series)
        except AelabError as exc:
            raise type(exc)(prepared.user_text(str(exc))) from None
        except Exception as exc:  # a reader's bug: still one sentence, still the user's name
            text = prepared.user_text(str(exc).strip().splitlines()[0] if str(exc).strip() else "")
            raise DataError(
                f"{prepared.name}: cannot be read ({type(exc).__name__}: {text.rstrip('.')})."
            ) from None
    data.name = prepared.name
    data.upload = dict(prepared.record)  # see Dataset.meta()
    return data


def restorable(record: dict | None, upload_root: str | Path) -> list[UploadedFile] | None:
    """A run's uploaded files when they are all still in gradio's upload folder, unchanged
    (same SHA-256); None otherwise."""
    if not record or not record.get("files") or not record.get("sha256"):
        return None
    root = Path(upload_root).resolve()
    files = []
    for item in record["files"]:
        path = Path(str(item.get("path", "")))
        if not path.is_absolute() or not path.resolve().is_relative_to(root):
            return None  # never hand out a file from elsewhere on the server
        if not path.is_file():
            return None
        files.append(UploadedFile(str(path), str(item.get("name") or path.name)))
    return files if fingerprint(files) == record["sha256"] else None


# -- what data a run was trained on -------------------------------------------------------------


def describe_shape(kind: str | None, shape: Any, series: Any = None) -> str:
    """'13 features', '1×8×8 images', 'windows of 3 channels × 64 steps'."""
    dims = [int(d) for d in shape or []]
    if kind == "image" and len(dims) == 3:
        return f"{'×'.join(map(str, dims))} images"
    if len(dims) == 2 and (series or kind == "flat"):
        c, w = dims
        return f"windows of {c} channel{'s' if c != 1 else ''} × {w} steps"
    if len(dims) == 1:
        return f"{dims[0]} feature{'s' if dims[0] != 1 else ''}"
    return f"samples of {'×'.join(map(str, dims)) or 'unknown shape'}"


def describe_data(meta: dict | None) -> str:
    """A data description as a person reads it: 'wine (13 features)'."""
    meta = meta or {}
    name = (meta.get("upload") or {}).get("name") or meta.get("name") or "unnamed data"
    shape = describe_shape(meta.get("kind"), meta.get("sample_shape"), meta.get("series"))
    return f"{name} ({shape})"


def data_mismatch(trained: dict | None, chosen: dict | None) -> str | None:
    """Why a run trained on ``trained`` cannot continue on ``chosen`` (data descriptions, as
    ``Dataset.meta()`` gives them), or None when they have the same kind and sample shape."""
    trained, chosen = trained or {}, chosen or {}
    shape = list(trained.get("sample_shape") or [])
    if not shape or not trained.get("kind"):
        return None  # an old record: the trainer's own shape check still applies
    if trained.get("kind") == chosen.get("kind") and shape == list(
        chosen.get("sample_shape") or []
    ):
        return None
    return (
        f"This run was trained on {describe_data(trained)}; the data chosen is "
        f"{describe_data(chosen)}, so the run cannot continue on it: choose data of the same "
        "shape, or train a new model."
    )
