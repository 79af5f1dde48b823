"""Per-browser-session lab state and the plumbing shared by the event handlers."""

from __future__ import annotations

import functools
import inspect as pyinspect
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np
from gradio.data_classes import FileData, ListFiles
from pydantic import model_validator

from ..data import Dataset, load_data
from ..errors import AelabError
from ..events import StopSignal
from ..params import TrainConfig, validate
from ..plugins import get_datasets, get_model
from ..series import DEFAULT_WINDOW, SeriesOptions, coerce_options
from . import uploads, widgets

log = logging.getLogger("aelab.ui")

UPLOAD = "uploaded file"  # the Dataset choice meaning "use the file in the upload box"
PREVIEW_N = 8  # samples in the live reconstruction grid


@dataclass
class LabSession:
    """What one browser tab owns: its model, data, run and training; never shared."""

    spec: Any = None
    params: Any = None
    config: TrainConfig | None = None
    model: Any = None
    data: Dataset | None = None
    run_id: str | None = None
    run_dir: str | None = None
    history: list[dict[str, Any]] = field(default_factory=list)
    metric_rows: list[dict[str, Any]] = field(default_factory=list)  # figures that are not losses
    stop: StopSignal | None = None  # made per training: gradio deep-copies the initial state
    training: bool = False
    export_folder: str | None = None
    _data_cache: dict[Any, Dataset] = field(default_factory=dict, repr=False)
    # What this tab unpacked from its uploads (a zip, several images); removed with the tab.
    upload_area: uploads.UploadArea = field(default_factory=uploads.UploadArea, repr=False)

    def require_model(self) -> Any:
        """The session's trained model, or a user-facing error saying what to do first."""
        if self.model is None:
            raise AelabError("There is no trained model yet: press Train, or open a saved run.")
        return self.model

    def require_data(self) -> Dataset:
        """The session's data, or a user-facing error saying what to do first."""
        if self.data is None:
            raise AelabError("There is no data yet: press Train, or open a saved run.")
        return self.data

    def test_set(self) -> Dataset:
        """The held-out part of the data (the whole data when nothing was held out)."""
        if self.data is None:
            raise AelabError("There is no data yet: press Train, or open a saved run.")
        cfg = self.config or TrainConfig()
        if cfg.val_fraction > 0 and len(self.data) > 2:
            return self.data.split(cfg.val_fraction, cfg.seed)[1]
        return self.data

    def train_set(self) -> Dataset:
        """The part of the data the model was trained on."""
        cfg = self.config or TrainConfig()
        assert self.data is not None
        if cfg.val_fraction > 0 and len(self.data) > 2:
            return self.data.split(cfg.val_fraction, cfg.seed)[0]
        return self.data


def new_session() -> LabSession:
    """A fresh session; gr.State deep-copies its initial value once per browser tab."""
    return LabSession()


def close_session(session: LabSession) -> None:
    """A tab was closed (gr.State's delete callback): remove what it unpacked."""
    if isinstance(session, LabSession):
        session.upload_area.cleanup()


def dataset_choices() -> list[str]:
    """The Dataset dropdown's choices: the registered built-ins, then an uploaded file."""
    return [*get_datasets(), UPLOAD]


def series_options(enabled: Any, window: Any = None, stride: Any = None) -> SeriesOptions | None:
    """The Series controls as SeriesOptions (None when off); a one-sentence error if invalid."""
    if not enabled:
        return None

    def whole(value: Any, what: str) -> Any:
        if value is None or value == "":
            return None
        try:
            number = float(value)
        except (TypeError, ValueError):
            number = math.nan
        if not number.is_integer():
            raise AelabError(
                f"The series {what} must be a whole number of time steps, not {value!r}."
            )
        return int(number)

    size = whole(window, "window")
    return coerce_options(
        {"window": DEFAULT_WINDOW if size is None else size, "stride": whole(stride, "stride")}
    )


def load_dataset(session: LabSession | None, name: Any, upload: Any, series: Any = None) -> Dataset:
    """The chosen dataset: a built-in by name (its series cut as ``series`` says), the uploaded
    file(s) when that is chosen, or a Dataset already loaded."""
    if isinstance(name, Dataset):
        return name
    files = uploads.files_of(upload)
    options = coerce_options(series)
    area = session.upload_area if session is not None else uploads.UploadArea()
    with area.lock:
        if name == UPLOAD or (not name and files):
            if not files:
                raise AelabError(
                    "Choose a file in the upload box first, or pick a built-in dataset."
                )
            key: Any = ("upload", tuple(files), options)
        else:
            key = ("builtin", name or "digits", options)
        cache = session._data_cache if session is not None else {}
        if key not in cache:
            cache.clear()  # keep one dataset per session: uploads can be large
            if key[0] == "upload":
                cache[key] = uploads.load(area, files, options)
            else:
                cache[key] = load_data(key[1], series=options)
        if session is None:
            area.cleanup()
        return cache[key]


class _OneOrMoreFiles(ListFiles):
    """Several files, or one sent alone (how callers of the one-file upload box send it)."""

    @model_validator(mode="before")
    @classmethod
    def _one_is_a_list(cls, value: Any) -> Any:
        return [value] if isinstance(value, (dict, FileData)) else value


class _NoStub:
    """Gradio writes a ``.pyi`` stub beside the module of every component subclass it sees
    defined (for its own component authoring); aelab ships no stubs and writes nothing into its
    package, so the writer is off while :class:`DataUpload` is defined."""

    def __enter__(self) -> None:
        import gradio.component_meta as meta

        self.meta, self.writer = meta, meta.create_or_modify_pyi
        meta.create_or_modify_pyi = lambda *args, **kwargs: None

    def __exit__(self, *exc: Any) -> None:
        self.meta.create_or_modify_pyi = self.writer


with _NoStub():

    class DataUpload(gr.File):
        """The Build column's upload box: one data file, several images or a .zip. Handlers
        get a list of :class:`uploads.UploadedFile` (the server's path and the user's name)."""

        is_template = True  # drawn by gradio's own File component

        def __init__(self, **kwargs: Any):
            super().__init__(file_count="multiple", **kwargs)
            self.data_model = _OneOrMoreFiles

        def get_config(self, cls: Any = None) -> dict[str, Any]:
            return super().get_config(cls or gr.File)  # its props are gr.File's arguments

        def preprocess(self, payload: Any) -> list[uploads.UploadedFile] | None:
            if payload is None:
                return None
            files = payload.root if isinstance(payload, ListFiles) else [payload]
            return [uploads.UploadedFile(f.path, Path(f.orig_name or f.path).name) for f in files]

        def postprocess(self, value: Any) -> ListFiles | None:
            files = uploads.files_of(value)
            if not files:
                return None
            return ListFiles(
                root=[
                    FileData(path=f.path, orig_name=f.name, size=Path(f.path).stat().st_size)
                    for f in files
                ]
            )


def _upload_path(upload: Any) -> str | None:
    if upload is None:
        return None
    if isinstance(upload, dict):  # gradio_client may send a FileData dict
        upload = upload.get("path")
    return str(Path(str(upload))) if upload else None


def validated(
    model_id: str, params: dict | None, config: dict | None
) -> tuple[Any, Any, TrainConfig]:
    """The model spec, its validated params and the validated training settings."""
    spec = get_model(model_id)
    params = _mapping(params, "hyperparameters", '{"code_size": 8}')
    config = _mapping(config, "training settings", '{"epochs": 5}')
    p = spec.validate_params(widgets.coerce(spec.schema(), params))
    c = validate(
        TrainConfig, widgets.coerce(TrainConfig.model_json_schema(), config), "training settings"
    )
    return spec, p, c


def _mapping(value: Any, what: str, example: str) -> dict:
    """``value`` as a dict of settings (None or empty: none), or a one-sentence error."""
    if value is None or (not isinstance(value, dict) and value in ("", [], ())):
        return {}
    if not isinstance(value, dict):
        shown = repr(value) if len(repr(value)) <= 40 else f"a {type(value).__name__}"
        raise AelabError(
            f"The {what} must be a JSON object of names and values, like {example}, not {shown}."
        )
    return dict(value)


def sentence(exc: BaseException) -> str:
    """One readable sentence for any exception (AelabError messages are already one)."""
    if isinstance(exc, AelabError):
        return str(exc)
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    text = text.rstrip(".")
    return f"Something went wrong ({type(exc).__name__}{': ' + text if text else ''})."


def guarded(fn: Callable) -> Callable:
    """Wrap a handler so every failure becomes a gr.Error message in the page, not a traceback."""

    def fail(exc: Exception) -> gr.Error:
        if isinstance(exc, gr.Error):
            return exc
        if not isinstance(exc, AelabError):
            log.exception("handler %s failed", fn.__name__)
        return gr.Error(sentence(exc), print_exception=False)

    if pyinspect.isgeneratorfunction(fn):

        @functools.wraps(fn)
        def gen_wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                yield from fn(*args, **kwargs)
            except Exception as exc:
                raise fail(exc) from None

        return gen_wrapper

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            raise fail(exc) from None

    return wrapper


def dataset_summary(data: Dataset) -> str:
    """One line saying what the data is: size, shape, kind and labels."""
    shape = "×".join(str(s) for s in data.sample_shape)
    labels = (
        f", {len(data.label_names)} labelled classes"
        if data.label_names
        else (", labelled" if data.labels is not None else ", no labels")
    )
    return f"**{data.name}**: {len(data):,} samples of {shape} ({data.kind}{labels})."


def preview_batch(data: Dataset, config: TrainConfig | None) -> np.ndarray:
    """A fixed handful of held-out samples for the live reconstruction grid."""
    cfg = config or TrainConfig()
    part = data.split(cfg.val_fraction, cfg.seed)[1] if cfg.val_fraction > 0 else data
    return part.x[:PREVIEW_N]
