"""Reading an export for the runtime: its manifest checked field by field, its files checked
against their sha256, and the runtime's two error classes.

Torch-free (``aelab.runtime`` imports it and re-exports the errors). Each ``*_problem`` check
returns a short clause saying what is wrong (``"its graph 'encoder' has no input name"``), or
None; the loaders put it into one sentence.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from pathlib import Path
from typing import Any

import numpy as np

from .errors import AelabError
from .ids import id_problem, show
from .telemetry import ort
from .windowing import WINDOW_METHOD

MANIFEST = "manifest.json"
META_PREFIX = "aelab."
SHA256 = re.compile(r"[0-9a-f]{64}")
UNVERIFIED = "pass verify=False (aelab infer --no-verify) to load it unchecked"


class RuntimeInputError(AelabError, ValueError):
    """Input of the wrong shape, dtype or range, or an unknown graph; the message says what fits."""

    __module__ = "aelab.runtime"


class RuntimeLoadError(AelabError):
    """An export folder or file is missing, incomplete, unreadable or altered."""

    __module__ = "aelab.runtime"


SCALINGS = ("none", "divide", "minmax", WINDOW_METHOD)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _kind(value: Any) -> str:
    """'a list', 'a str', ... for a message."""
    name = {"dict": "object", "list": "list", "str": "string", "NoneType": "null"}.get(
        type(value).__name__, type(value).__name__
    )
    return f"{'an' if name[0] in 'aeiou' else 'a'} {name}"


def manifest_problem(manifest: Any) -> str | None:
    """Why a parsed manifest cannot be used, or None."""
    if not isinstance(manifest, dict):
        return f"it holds {_kind(manifest)}, not a JSON object"
    graphs = manifest.get("graphs")
    if not isinstance(graphs, list):
        return f"its 'graphs' entry is {_kind(graphs)}, not a list of graph objects"
    if not graphs:
        return "its 'graphs' list is empty"
    names: set[str] = set()
    for index, entry in enumerate(graphs):
        problem = entry_problem(entry, index)
        if problem:
            return problem
        if entry["name"] in names:
            return f"it lists the graph {show(entry['name'])} twice"
        names.add(entry["name"])
    for key in ("preprocessing", "applications", "application_notes", "data"):
        if manifest.get(key) is not None and not isinstance(manifest[key], dict):
            return f"its '{key}' entry is {_kind(manifest[key])}, not an object"
    scaling = (manifest.get("preprocessing") or {}).get("scaling")
    return scaling_problem(scaling, "its preprocessing") if scaling is not None else None


def entry_problem(entry: Any, index: int) -> str | None:
    """Why one ``graphs[]`` entry cannot be used, or None (its file name is checked apart)."""
    if not isinstance(entry, dict):
        return f"its graph entry {index + 1} is {_kind(entry)}, not an object"
    name = entry.get("name")
    if name is None:
        return f"its graph entry {index + 1} has no 'name'"
    problem = id_problem(name)
    if problem:
        return f"it names a graph {show(name)}, which is not allowed because {problem}"
    where = f"its graph {show(name)}"
    for key in ("role", "exporter"):
        if entry.get(key) is not None and not isinstance(entry[key], str):
            return f"{where} has a '{key}' that is {_kind(entry[key])}, not a string"
    if entry.get("prior") is not None and not isinstance(entry["prior"], str):
        return f"{where} has a 'prior' that is {_kind(entry['prior'])}, not a string or null"
    digest = entry.get("sha256")
    if digest is not None and not (isinstance(digest, str) and SHA256.fullmatch(digest)):
        return f"{where} has a 'sha256' that is not 64 lowercase hex digits"
    return _input_problem(entry.get("input"), where) or _outputs_problem(
        entry.get("outputs"), where
    )


def _input_problem(spec: Any, where: str) -> str | None:
    if not isinstance(spec, dict):
        return f"{where} has no 'input' object"
    if not isinstance(spec.get("name"), str) or not spec["name"]:
        return f"{where} has no input name"
    shape = spec.get("shape")
    if (
        not isinstance(shape, list)
        or len(shape) < 2
        or not all(_is_int(d) and d > 0 for d in shape[1:])
    ):
        return f"{where} has an input shape that is not ['batch', ...] with positive whole sizes"
    rng = spec.get("range")
    if rng is not None and not (
        isinstance(rng, list) and len(rng) == 2 and all(map(_is_number, rng)) and rng[0] < rng[1]
    ):
        return f"{where} has an input range that is not [low, high] numbers"
    pre = spec.get("preprocessing")
    if pre is not None:
        if not isinstance(pre, dict):
            return f"{where} has input preprocessing that is {_kind(pre)}, not an object"
        if pre.get("scaling") is not None:
            return scaling_problem(pre["scaling"], where)
    for key in ("distribution",):
        if spec.get(key) is not None and not isinstance(spec[key], str):
            return f"{where} has an input '{key}' that is {_kind(spec[key])}, not a string"
    return None


def _outputs_problem(outputs: Any, where: str) -> str | None:
    if not isinstance(outputs, list) or not outputs:
        return f"{where} has no 'outputs' list"
    for out in outputs:
        if not isinstance(out, dict) or not isinstance(out.get("name"), str) or not out["name"]:
            return f"{where} has an output without a name"
    return None


def scaling_problem(scaling: Any, where: str) -> str | None:
    """Why a recorded scaling cannot be applied, or None."""
    if not isinstance(scaling, dict):
        return f"{where} has a scaling that is {_kind(scaling)}, not an object"
    method = scaling.get("method", "none")
    if method not in SCALINGS:
        return f"{where} has the unknown scaling method {show(method)} ({', '.join(SCALINGS)})"
    if method == "divide":
        scale = scaling.get("scale")
        if not (_is_number(scale) and scale > 0):
            return f"{where} has a divide scaling whose 'scale' is not a positive number"
    if method == "minmax":
        # A number each, or arrays of one shape: per feature, or per channel of a series
        # ([[lo], [lo], ...], broadcast over a window's time steps).
        if not (_numbers(scaling.get("min")) and _numbers(scaling.get("max"))):
            return f"{where} has a minmax scaling whose 'min' and 'max' are not numbers"
        if np.shape(scaling["min"]) != np.shape(scaling["max"]):
            return f"{where} has a minmax scaling whose 'min' and 'max' differ in shape"
    return None


def _numbers(value: Any) -> bool:
    """A number, or a non-empty (nested) list of numbers with every row of one length."""
    if _is_number(value):
        return True
    if not isinstance(value, list) or not value:
        return False
    if all(isinstance(v, list) for v in value):
        return len({len(v) for v in value}) == 1 and all(_numbers(v) for v in value)
    return all(_is_number(v) for v in value)


def series_problem(record: Any) -> str | None:
    """Why a recorded series cut (window, stride) cannot be used, or None."""
    for key in ("window", "stride"):
        value = record.get(key)
        if not (_is_int(value) and value > 0):
            return f"its series record has a '{key}' that is not a positive whole number"
    return None


def anomaly_problem(record: dict) -> str | None:
    """Why an anomaly record (whose score kind is known) cannot be used, or None."""
    if not isinstance(record.get("graph"), str) or not isinstance(record.get("output"), str):
        return "its anomaly record does not name a graph and an output"
    if not _is_number(record.get("threshold")):
        return "its anomaly record has no numeric threshold"
    norm = record.get("normalization")
    if not (
        isinstance(norm, dict)
        and _is_number(norm.get("mean"))
        and _is_number(norm.get("std"))
        and norm["std"] > 0
    ):
        return "its anomaly record has no normalisation (a mean and a positive std)"
    return None


# -- reading -----------------------------------------------------------------------------------
def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_manifest(path: Path) -> dict:
    """A manifest.json parsed and checked; RuntimeLoadError (one sentence) otherwise."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise RuntimeLoadError(
            f"{path} is not UTF-8 text, so it is not an aelab manifest."
        ) from None
    except OSError as exc:
        raise RuntimeLoadError(f"{path} cannot be read ({exc.strerror or exc}).") from None
    try:
        manifest = json.loads(text)
    except json.JSONDecodeError as exc:
        raise RuntimeLoadError(
            f"{path} is not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno}); "
            "export the run again."
        ) from None
    except RecursionError:
        raise RuntimeLoadError(f"{path} is nested too deeply to be an aelab manifest.") from None
    problem = manifest_problem(manifest)
    if problem:
        raise RuntimeLoadError(f"{path} is not a usable aelab manifest: {problem}.")
    return manifest


def _file_problem(name: Any) -> str | None:
    # The manifest names plain files inside its own folder only: no path, nothing hidden.
    return id_problem(name) or (None if name.endswith(".onnx") else "it is not an .onnx file")


def check_sha256(path: Path, entry: dict, manifest_path: Path) -> None:
    """The file's bytes are the ones the manifest recorded; RuntimeLoadError otherwise."""
    if not entry.get("sha256"):
        raise RuntimeLoadError(
            f"{manifest_path} records no sha256 for {path.name}, so the file cannot be checked "
            f"for changes; export the run again, or {UNVERIFIED}."
        )
    if sha256_file(path) != entry["sha256"]:
        raise RuntimeLoadError(
            f"{path} does not match its sha256 in {manifest_path.name}; it was altered or "
            f"damaged, so export the run again (or, if you changed it on purpose, {UNVERIFIED})."
        )


def read_folder(folder: Path, verify: bool = True) -> tuple[dict, dict[str, Path]]:
    """An export folder's manifest and graph files, each file checked against its sha256 unless
    ``verify`` is False."""
    manifest = read_manifest(folder / MANIFEST)
    files = {}
    for g in manifest["graphs"]:
        name = g.get("file")
        problem = _file_problem(name)
        if problem:
            raise RuntimeLoadError(
                f"{folder / MANIFEST} names the graph file {show(name)}, which is not a plain file "
                f"name inside the export folder because {problem}."
            )
        path = folder / name
        if not path.is_file():
            raise RuntimeLoadError(f"The export lacks {path}; export the run again.")
        if verify:
            check_sha256(path, g, folder / MANIFEST)
        files[g["name"]] = path
    return manifest, files


def session(path: Path, *args: Any, **kwargs: Any) -> Any:
    """An onnxruntime session for a file; RuntimeLoadError (one sentence) when it cannot load."""
    try:
        return ort.InferenceSession(str(path), *args, **kwargs)
    except Exception as exc:
        if type(exc).__name__ == "InvalidProtobuf":
            raise RuntimeLoadError(
                f"{path} is not an ONNX model (its bytes do not parse as one); export the run "
                "again."
            ) from None
        raise RuntimeLoadError(
            f"{path} cannot be loaded by onnxruntime {ort.__version__} ({ort_reason(exc)})."
        ) from None


def session_problem(session: Any, entry: dict) -> str | None:
    """Why a loaded graph file does not fit its manifest entry (input and output names), or
    None."""
    inputs = [i.name for i in session.get_inputs()]
    if inputs != [entry["input"]["name"]]:
        return (
            f"it takes the input {', '.join(map(show, inputs))}, not {show(entry['input']['name'])}"
        )
    outputs = {o.name for o in session.get_outputs()}
    missing = [o["name"] for o in entry["outputs"] if o["name"] not in outputs]
    return f"it has no output {show(missing[0])}" if missing else None


def ort_reason(exc: BaseException) -> str:
    """onnxruntime's message without its '[ONNXRuntimeError] : 2 : INVALID_ARGUMENT : ' prefix,
    first line only."""
    text = re.sub(r"^\[ONNXRuntimeError\] : \d+ : \w+ : ", "", str(exc).strip())
    return (text.splitlines() or [type(exc).__name__])[0].rstrip(".")[:300]


def read_file(path: Path, verify: bool = True) -> tuple[dict, dict[str, Path]]:
    """One .onnx file described by its own metadata. When the manifest.json beside it lists the
    file, its bytes are checked against the recorded sha256 first (unless ``verify`` is
    False)."""
    beside = path.parent / MANIFEST
    if verify and beside.is_file():
        entry = next(
            (g for g in read_manifest(beside)["graphs"] if g.get("file") == path.name), None
        )
        if entry is not None:
            check_sha256(path, entry, beside)
    props = session(path, providers=["CPUExecutionProvider"]).get_modelmeta().custom_metadata_map
    try:
        entry = {
            "name": props[META_PREFIX + "graph"],
            "file": path.name,
            "exporter": props.get(META_PREFIX + "exporter"),
            "input": json.loads(props[META_PREFIX + "input"]),
            "outputs": json.loads(props[META_PREFIX + "outputs"]),
        }
        if META_PREFIX + "role" in props:  # files written before roles have neither key
            entry["role"] = props[META_PREFIX + "role"]
            entry["prior"] = json.loads(props.get(META_PREFIX + "prior", "null"))
        manifest = {
            "model": props.get(META_PREFIX + "model"),
            "run_id": props.get(META_PREFIX + "run_id"),
            "aelab_version": props.get(META_PREFIX + "aelab_version"),
            "params": json.loads(props.get(META_PREFIX + "params", "{}")),
            "data": json.loads(props.get(META_PREFIX + "data", "null")),
            "preprocessing": json.loads(props.get(META_PREFIX + "preprocessing", "null")),
            "graphs": [entry],
        }
    except KeyError as exc:
        raise RuntimeLoadError(
            f"{path} carries no aelab metadata ({exc} is missing); export the run again."
        ) from None
    except ValueError:
        raise RuntimeLoadError(
            f"{path} carries aelab metadata that is not valid JSON; export the run again."
        ) from None
    problem = manifest_problem(manifest)
    if problem:
        raise RuntimeLoadError(f"{path} carries unusable aelab metadata: {problem}.")
    return manifest, {entry["name"]: path}
