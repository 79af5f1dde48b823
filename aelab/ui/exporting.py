"""Export from the page: the validated ONNX export, its report and files, and a quick check."""

from __future__ import annotations

import contextlib
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import AelabError, ExportError
from ..ids import check_id
from .session import LabSession

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")


REPLACE_LABEL = "Replace the existing export"
ARCHIVE_SUFFIX = ".zip"


def replace_checkbox() -> Any:
    """The Export tab's confirmation that an earlier export of the run may be replaced (what
    ``aelab export --force`` is on the command line); unticked by default."""
    import gradio as gr

    return gr.Checkbox(
        label=REPLACE_LABEL,
        value=False,
        info="An earlier export of this run is kept unless this is ticked.",
        elem_id="export-replace",
    )


def export(session: LabSession, run_id: str, replace: bool = False) -> tuple[str, list[str]]:
    """Export a run (this tab's by default) to ONNX; returns the report and the files.

    An earlier export of the run is replaced only when ``replace`` is ticked, as the CLI asks
    for ``--force``. The zip offered for download lives inside the export folder, so it goes
    when the export is replaced or deleted; nothing is left in a temporary folder.
    """
    from ..export import MANIFEST, export_run, exports_root

    run_id = run_id.strip(" ") if isinstance(run_id, str) and run_id.strip() else session.run_id
    if not run_id:
        raise AelabError("Train a model or open a saved run first; then it can be exported.")
    check_id(run_id)  # ids only, never paths: nothing outside the runs folder is read
    if not isinstance(replace, bool):
        raise AelabError(f"'{REPLACE_LABEL}' must be ticked or not, not {replace!r}.")
    if session.training and run_id == session.run_id:
        raise AelabError("This run is still training; press Stop or wait for it to finish.")
    dest = exports_root() / run_id
    if not replace and dest.is_dir() and any(dest.iterdir()):
        raise AelabError(_exists(run_id, dest))
    try:
        result = export_run(run_id, force=replace)
    except ExportError as exc:  # another export of the run got there first, or a stray folder
        if "pass --force" in str(exc):
            raise AelabError(_exists(run_id, dest)) from None
        raise
    session.export_folder = str(result.folder)
    # One zip of the whole export for a single download, next to the individual files.
    manifest = result.folder / MANIFEST
    members = [*result.files, manifest]
    archive = write_archive(result.folder, members)
    files = [str(archive), *[str(f) for f in members]]
    report = (
        f"**Exported** run `{run_id}` to `{result.folder}`: {len(result.files)} ONNX graph(s), "
        "each checked against the torch model with onnxruntime on random inputs before it was "
        "written "
        "(max abs diff is the largest difference between their outputs).\n\n"
        f"{result.summary()}"
    )
    return report, files


def _exists(run_id: str, dest: Path) -> str:
    return (
        f"Run '{run_id}' was already exported to {dest}; tick '{REPLACE_LABEL}' and export "
        "again to overwrite it, or keep the earlier export as it is."
    )


def write_archive(folder: Path, members: list[Path]) -> Path:
    """``<folder>/<folder name>.zip`` holding ``members`` (by name), written under a temporary
    name and renamed into place."""
    archive = folder / f"{folder.name}{ARCHIVE_SUFFIX}"
    fd, tmp = tempfile.mkstemp(prefix=f".{archive.name}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as fh, zipfile.ZipFile(fh, "w", zipfile.ZIP_DEFLATED) as zf:
            for path in members:
                zf.write(path, arcname=path.name)
        os.chmod(tmp, 0o644)  # mkstemp makes it private; the export's files read like any file
        os.replace(tmp, archive)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return archive


def _read_input(path: str, shape: tuple[int, ...]) -> tuple[np.ndarray, bool]:
    """An uploaded input as an array, and whether it still needs the training data's scaling;
    a file that cannot be used gets one sentence naming it and what is expected."""
    from .. import loaders

    p = Path(path)
    suffix = p.suffix.lower()
    if suffix not in (*IMAGE_SUFFIXES, ".npy", ".csv"):
        raise AelabError(
            f"Upload an image ({', '.join(IMAGE_SUFFIXES)}), a .npy or a .csv file, not '{p.name}'."
        )
    if not p.is_file() or p.stat().st_size == 0:
        raise AelabError(f"{p.name}: the file is empty; upload a file holding an input.")
    if suffix in IMAGE_SUFFIXES:
        if len(shape) != 3:
            raise AelabError(
                "This model takes flat vectors, not images; upload a .npy or .csv file."
            )
        return _read_image(p, shape)[None], False
    try:
        if suffix == ".npy":
            arr = loaders.load_npy_array(p)
        else:
            arr = loaders.read_csv(p).x
        if arr.ndim == 0 or arr.size == 0:
            raise AelabError(
                f"{p.name}: has shape {arr.shape}; upload one input or a batch of inputs."
            )
        loaders.check_numeric_dtype(arr.dtype, p.name)
        loaders.check_finite(arr, p.name)
    except AelabError as exc:  # the server's copy is named by the user's file name
        raise AelabError(str(exc).replace(str(p), p.name)) from None
    return arr[:8], True


def _read_image(p: Path, shape: tuple[int, ...]) -> np.ndarray:
    """An uploaded image as (C, H, W) in [0, 1], resized to the model's input."""
    from PIL import Image

    try:
        with Image.open(p) as img:
            img = img.convert("L" if shape[0] == 1 else "RGB").resize((shape[2], shape[1]))
            arr = np.asarray(img, dtype=np.float32) / 255.0
    except Image.DecompressionBombError:
        raise AelabError(
            f"{p.name}: is an image of more than {2 * Image.MAX_IMAGE_PIXELS:,} pixels, too large "
            "to decode safely; upload a smaller image."
        ) from None
    except Exception:  # Pillow raises many types for a file that is not an image it reads
        raise AelabError(
            f"{p.name}: cannot be read as an image (it may be corrupt or truncated); upload a "
            "PNG or JPEG image."
        ) from None
    return arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)


def quick_check(session: LabSession, upload: Any) -> tuple[np.ndarray, str]:
    """Run an uploaded input through the exported model with onnxruntime; compare with torch."""
    from .. import inspect as ins  # torch: not before it is needed
    from ..runtime import load

    if not session.export_folder:
        raise AelabError("Press Export ONNX first; the check runs the exported files.")
    path = upload.get("path") if isinstance(upload, dict) else upload
    if not path:
        raise AelabError("Upload an input to check: an image, a .npy or a .csv file.")
    exported = load(session.export_folder)
    # By role, whatever the graphs are called: the autoencoder, else the encoder and decoder.
    whole, encoder = exported.graph_for("autoencoder"), exported.graph_for("encoder")
    graph = whole or (encoder if exported.graph_for("decoder") else None)
    if graph is None:
        raise AelabError(f"This export cannot reconstruct (it has {', '.join(exported.graphs)}).")
    x, raw = _read_input(str(path), exported.input_shape(graph))
    x = exported.prepare(graph, x, preprocess=raw)
    out = exported.reconstruct(x)
    ran = f"`{graph}` graph" if whole else f"`{graph}` and `{exported.graph_for('decoder')}` graphs"
    line = f"onnxruntime ran the {ran} on {len(x)} input(s) with {exported.provider}"
    if session.model is not None and tuple(session.model.sample_shape) == tuple(x.shape[1:]):
        diff = float(np.max(np.abs(out - ins.reconstruct(session.model, x))))
        line += f"; the largest difference from the torch model is {diff:.2e}"
    rows = [x, out]
    img = ins.image_grid(rows, ["input", "onnx output"], cell=56)
    return img, line + ". Rows: your input, then the exported model's reconstruction."
