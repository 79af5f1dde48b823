"""Readers: what turns a user's file or folder into a Dataset, registered through a hook.

A plugin adds a file format by implementing ``register_readers(register)`` and calling
``register(Reader(...))``; aelab's own formats (.npy, .npz, .csv, image folders, MNIST IDX) are
readers of the default plugin :mod:`aelab.builtin_readers`, registered the same way. A file goes
to the first reader, built-ins first, whose suffixes match its name and whose ``can_read``
check (if any) says yes; a folder only to a reader with a ``can_read`` check.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import loaders, plugins
from .errors import AelabError, DataError, PluginError

if TYPE_CHECKING:  # streaming imports data, which imports this module
    from .streaming import StreamingDataset

_NAME = re.compile(r"^[a-z][a-z0-9_-]*$")


@dataclass(frozen=True)
class ReadOptions:
    """The loading options a reader may honour (each reader ignores what does not apply)."""

    label_column: str | None = None  # the column holding labels, for tables
    image_size: int | None = None  # resize images to a square of this many pixels
    grayscale: bool | None = None  # force one channel (True) or three (False)


@dataclass
class Reader:
    """A file format: what it reads, and ``read(path, options) -> aelab.data.Dataset``.

    ``suffixes`` are matched case-insensitively against the end of a file's name (".npy",
    ".tar.gz"); ``can_read(path) -> bool`` is asked after the suffixes match, or alone when
    there are none (the only way to read folders). The Dataset returned holds values in [0, 1].

    ``stream(path, options) -> aelab.streaming.StreamingDataset`` is optional: it opens the data
    so that its samples stay on disk and are read in batches, reading only headers (the host then
    calls ``prepare()``, which makes any pass over the values that scaling needs). It raises
    :class:`aelab.streaming.NotStreamable` for a file of its format that cannot be streamed
    (a compressed one, say); ``load_data(stream="auto")`` then reads that file into memory.
    """

    name: str
    description: str  # one line: what the format holds and how it is read
    read: Callable[[Path, ReadOptions], Any]
    suffixes: tuple[str, ...] = ()
    can_read: Callable[[Path], bool] | None = None
    label: str = ""  # how `aelab datasets` names the format; from the suffixes when empty
    stream: Callable[[Path, ReadOptions], StreamingDataset] | None = None
    plugin: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        if isinstance(self.suffixes, str):
            self.suffixes = (self.suffixes,)
        self.suffixes = tuple(str(s).lower() for s in self.suffixes)
        if not self.label:
            self.label = "/".join(self.suffixes) or self.name

    def matches(self, path: Path) -> bool:
        """Whether this reader takes ``path`` (a folder only through ``can_read``)."""
        if self.suffixes and (path.is_dir() or not path.name.lower().endswith(self.suffixes)):
            return False
        if self.can_read is None:
            return True
        try:
            return bool(self.can_read(path))
        except Exception as exc:  # a broken check names its reader instead of crashing
            raise DataError(
                f"{path}: the can_read check of reader '{self.name}' (plugin '{self.plugin}') "
                f"failed ({type(exc).__name__}: {exc})."
            ) from exc

    def to_json(self) -> dict[str, Any]:
        """What `aelab datasets --json` says about it."""
        return {
            "name": self.name,
            "label": self.label,
            "description": self.description,
            "suffixes": list(self.suffixes),
            "can_read": self.can_read is not None,
            "stream": self.stream is not None,
            "plugin": self.plugin,
        }


def _problems(reader: Reader, taken: dict[str, Reader]) -> list[str]:
    problems = []
    if not isinstance(reader.name, str) or not _NAME.match(reader.name):
        problems.append(
            "its name must be lower-case letters, digits, '-' or '_', starting with a letter"
        )
    elif reader.name in taken:
        problems.append(f"its name is taken by plugin '{taken[reader.name].plugin}'")
    text = str(reader.description or "").strip()
    if not text or "\n" in text:
        problems.append("it needs a one-line description")
    if not callable(reader.read):
        problems.append("read must be a function read(path, options) returning a Dataset")
    if reader.stream is not None and not callable(reader.stream):
        problems.append(
            "stream must be a function stream(path, options) returning a StreamingDataset"
        )
    if reader.can_read is not None and not callable(reader.can_read):
        problems.append("can_read must be a function can_read(path) returning True or False")
    bad = [s for s in reader.suffixes if not s.startswith(".") or len(s) < 2]
    if bad:
        problems.append(f"suffixes must start with a dot, like '.csv' (got {bad})")
    if not reader.suffixes and reader.can_read is None:
        problems.append("it declares neither suffixes nor a can_read check, so it reads nothing")
    return problems


def registrar(readers: dict[str, Reader]) -> Callable[[str], Callable]:
    """The ``register`` callback the plugin host hands each plugin's ``register_readers``;
    a reader that breaks the contract is refused with one sentence naming it and its plugin."""

    def for_plugin(plugin: str) -> Callable:
        def register(reader: Any) -> None:
            if not isinstance(reader, Reader):
                raise PluginError(
                    f"register() got {type(reader).__name__}, expected an aelab.readers.Reader"
                )
            problems = _problems(reader, readers)
            if problems:
                plugins._refuse(
                    plugin,
                    "register_readers",
                    f"reader '{reader.name}' of plugin '{plugin}' was refused: "
                    + "; ".join(problems)
                    + ".",
                    "reader",
                )
                return
            reader.plugin = plugin
            readers[reader.name] = reader

        return register

    return for_plugin


def get_readers() -> dict[str, Reader]:
    """Every registered reader by name, in the order files are offered to them."""
    return plugins.registry().readers


def find_reader(path: Path) -> Reader:
    """The reader for a file or folder, or a one-sentence DataError naming the formats."""
    readers = get_readers()
    for reader in readers.values():
        if reader.matches(path):
            return reader
    from .image_loaders import IMAGE_EXTS

    suffix = path.suffix.lower()
    if path.is_file() and suffix in IMAGE_EXTS:
        raise DataError(
            f"{path}: is a single image, but a dataset needs many; put the images in a folder "
            "and pass the folder."
        )
    accepted = ", ".join(r.label for r in readers.values())
    if path.is_dir():
        raise DataError(f"{path}: no reader takes this folder; accepted formats are {accepted}.")
    kind = f"'{suffix}'" if suffix else "without an extension"
    raise DataError(f"{path}: unsupported file type {kind}; accepted formats are {accepted}.")


def read_path(path: Path, options: ReadOptions | None = None, stream: bool | str = False) -> Any:
    """Read a user file or folder with the reader that takes it; the Dataset is checked.
    ``stream`` True (or "auto" for data over the size limit) opens it for reading in batches
    instead, as an :class:`aelab.streaming.StreamingDataset`."""
    from .data import check_loaded

    options = options or ReadOptions()
    reader = find_reader(path)
    if path.is_file():
        nbytes = path.stat().st_size
        if nbytes == 0:
            raise DataError(f"{path}: the file is empty; it must hold at least 2 samples.")
    if stream is True and reader.stream is None:
        able = ", ".join(r.label for r in get_readers().values() if r.stream is not None)
        raise DataError(
            f"{path}: {reader.label} data cannot be streamed; the formats that can are {able}."
        )
    if stream and reader.stream is not None:
        streamed = _open_stream(reader, path, options, must=stream is True)
        if streamed is not None:
            return streamed
    if path.is_file():
        loaders.check_size(str(path), path.stat().st_size)
    try:
        dataset = reader.read(path, options)
    except AelabError:
        raise
    except Exception as exc:  # a third-party reader's bug becomes one sentence, not a traceback
        raise DataError(
            f"{path}: reader '{reader.name}' of plugin '{reader.plugin}' failed "
            f"({type(exc).__name__}: {exc})."
        ) from exc
    check_loaded(dataset, f"{path}: reader '{reader.name}' of plugin '{reader.plugin}'")
    if len(dataset) < 2:
        raise DataError(
            f"{path}: has {len(dataset)} sample(s); at least 2 are needed to train and validate."
        )
    if not dataset.source:
        dataset.source = str(path.resolve())
    return dataset


def _open_stream(reader: Reader, path: Path, options: ReadOptions, must: bool) -> Any:
    """The data opened by the reader's ``stream``, or None when streaming is optional and the
    in-memory reader would take it: it fits under the size limit, or the file cannot stream."""
    from .streaming import NotStreamable, StreamingDataset

    origin = f"{path}: reader '{reader.name}' of plugin '{reader.plugin}'"
    try:
        data = reader.stream(path, options)
    except NotStreamable:
        if must:
            raise
        return None
    except AelabError:
        raise
    except Exception as exc:  # as for read: one sentence, not a traceback
        raise DataError(f"{origin} failed to stream ({type(exc).__name__}: {exc}).") from exc
    if not isinstance(data, StreamingDataset):
        raise DataError(
            f"{origin} streamed {type(data).__name__}, not an aelab.streaming.StreamingDataset."
        )
    # The in-memory reader refuses what is over the limit as float32 or as a file: stream that.
    on_disk = path.stat().st_size if path.is_file() else 0
    if not must and max(data.nbytes_float32, on_disk) <= loaders.max_bytes():
        return None
    if len(data) < 2:
        raise DataError(
            f"{path}: has {len(data)} sample(s); at least 2 are needed to train and validate."
        )
    return data.prepare()


def reader_lines() -> list[str]:
    """One line per reader for `aelab datasets`: what it reads, its name and plugin, and what it
    does."""
    readers = list(get_readers().values())
    width = max((len(r.label) for r in readers), default=8)
    return [f"{r.label:<{width}}  {r.description} [{r.name}, {r.plugin}]" for r in readers]
