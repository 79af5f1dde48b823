"""ONNX export: every graph a model declares, self-describing, validated, written atomically."""

from __future__ import annotations

import contextlib
import copy
import io
import json
import logging
import os
import re
import shutil
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch

from . import __version__, fsio
from .errors import ExportError
from .fsio import exports_root  # noqa: F401 - defined torch-free (the lab's launch needs it)
from .ids import id_problem, show
from .roles import PRIORS, ROLE_BY_NAME, ROLES
from .runtime import (  # imports onnxruntime through aelab.telemetry: telemetry off from here
    META_PREFIX,
    STANDARD_NORMAL,
    session_options,
    sha256_file,
)
from .windowing import HOW, WINDOW_METHOD

# Max abs difference allowed between onnxruntime and torch, for outputs within ±1; beyond, it
# grows with the largest |output| (a relative 1e-4), since float32 itself rounds a logit of 1000
# to steps of 6e-5: one rounding step there must not refuse a correct export.
TOLERANCE = 1e-4


def allowed_difference(reference: np.ndarray) -> float:
    """The largest abs difference accepted against these torch outputs."""
    scale = float(np.max(np.abs(reference))) if reference.size else 0.0
    return TOLERANCE * max(1.0, scale)


VALIDATION_BATCHES = (1, 16)  # batch 1 and a larger one, neither equal to the export example's 2
EXPORT_BATCH = 2  # example batch for tracing; 1 would let tracers specialise the batch axis
SEED = 0
MANIFEST = "manifest.json"
FORMAT = "aelab-onnx"
FORMAT_VERSION = 1
GRAPH_NAME_LENGTH = 64  # graph names become file names: ``<graph>.onnx``


@dataclass
class ExportResult:
    """What an export wrote: its folder, the manifest and the ONNX files."""

    folder: Path
    manifest: dict
    files: list[Path] = field(default_factory=list)

    def summary(self) -> str:
        """A short markdown table: one row per graph with its shapes, diff, exporter, provider."""
        rows = [
            "| graph | role | input shape | output shapes | max abs diff | exporter | validated on |",
            "|---|---|---|---|---|---|---|",
        ]
        for g in self.manifest["graphs"]:
            outs = ", ".join(f"{o['name']} {_shape_text(o['shape'])}" for o in g["outputs"])
            v = g["validation"]
            role = g.get("role", "")
            if g.get("prior"):
                role += f", prior {g['prior']}"
            rows.append(
                f"| {g['name']} | {role} | {g['input']['name']} {_shape_text(g['input']['shape'])} "
                f"| {outs} | {v['max_abs_diff']:.2e} | {g['exporter']} | {v['provider']} |"
            )
        return "\n".join(rows)


def _shape_text(shape: list) -> str:
    return "(" + ", ".join("N" if d == "batch" else str(d) for d in shape) + ")"


# -- destination ---------------------------------------------------------------------------
def _destination(out_dir: str | os.PathLike | None, run_id: str) -> Path:
    """The folder to write, refusing names that could reach outside the chosen place."""
    if out_dir is None:
        problem = id_problem(run_id)
        if problem:
            raise ExportError(
                f"Run id {show(run_id)} cannot name an export folder because {problem}; pass "
                "--out DIR."
            )
        return exports_root() / run_id
    raw = os.fspath(out_dir)
    # A '..' segment is how a relative destination escapes its base; an absolute path is explicit.
    if not raw.strip() or ".." in Path(raw).parts:
        raise ExportError(
            f"The export folder '{raw}' must not contain '..' segments; give a plain or an "
            "absolute path."
        )
    dest = Path(raw)
    if dest.resolve() == Path(dest.resolve().anchor):
        raise ExportError(f"Refusing to use the filesystem root '{raw}' as an export folder.")
    return dest


def _check_replaceable(dest: Path, force: bool) -> None:
    """An existing export is replaced only with force, and only if it really is an export."""
    if not dest.exists() and not dest.is_symlink():
        return
    if dest.is_symlink() or not dest.is_dir():
        raise ExportError(f"{dest} exists and is not a folder; choose another --out.")
    if not any(dest.iterdir()):
        return  # an empty folder made for the export holds nothing to lose
    if not force:
        raise ExportError(f"{dest} already exists; pass --force to replace it.")
    # --force must never wipe an unrelated folder (say --out ~ by mistake).
    if not (dest / MANIFEST).is_file():
        raise ExportError(
            f"{dest} is not empty and holds no {MANIFEST}, so it is not an aelab export; "
            "refusing to replace it."
        )


def _role(graph: Any) -> str:
    """What a graph does: its declared role, else the one its name implies (as GraphSpec does)."""
    return getattr(graph, "role", None) or ROLE_BY_NAME.get(graph.name, "other")


def _prior(graph: Any) -> str | None:
    return getattr(graph, "prior", None)


def _check_declared(graph: Any) -> None:
    """The role and prior the export records are ones the runtime can act on."""
    where = f"The model's graph {show(graph.name)}"
    if _role(graph) not in ROLES:
        raise ExportError(f"{where} has role {_role(graph)!r}; roles are {', '.join(ROLES)}.")
    if _prior(graph) not in PRIORS:
        raise ExportError(
            f"{where} has prior {_prior(graph)!r}; the runtime knows only 'normal' (N(0, I)) or "
            "None."
        )
    if _prior(graph) is not None and graph.input_range is not None:
        raise ExportError(
            f"{where} has prior {_prior(graph)!r} but a bounded input {graph.input_range}; "
            "N(0, I) inputs are unbounded (input_range=None)."
        )


def _listing(graphs: list[Any]) -> str:
    """Graph names, each with its role where the name does not say it."""
    return ", ".join(g.name if _role(g) == g.name else f"{g.name} ({_role(g)})" for g in graphs)


def _select_graphs(model: Any, names: list[str] | None) -> list[Any]:
    """The model's declared graphs, or the requested subset: each request a graph's name or a
    role, which selects every graph with that role (names checked before use)."""
    declared = list(model.graphs())
    for g in declared:
        problem = id_problem(g.name, GRAPH_NAME_LENGTH)
        if problem:
            raise ExportError(
                f"The model declares a graph named {show(g.name)}, which is not a safe file name "
                f"because {problem}."
            )
        _check_declared(g)
    if len({g.name for g in declared}) != len(declared):
        raise ExportError("The model declares two graphs with the same name.")
    if not declared:
        raise ExportError("This model declares no exportable graphs.")
    if names is None:
        return declared
    by_name = {g.name: g for g in declared}
    wanted: list[str] = []
    for name in names:
        name = name.strip()
        if not name:
            continue
        if name in by_name:
            found = [name]
        else:
            found = [g.name for g in declared if _role(g) == name]
        if not found:
            raise ExportError(f"Unknown graph {name!r}; this model exports: {_listing(declared)}.")
        wanted += [n for n in found if n not in wanted]
    if not wanted:
        raise ExportError(f"No graph named; this model exports: {_listing(declared)}.")
    return [by_name[n] for n in wanted]


# -- conversion ----------------------------------------------------------------------------
def _example(
    shape: tuple[int, ...], value_range: tuple[float, float] | None, batch: int, seed: int
) -> torch.Tensor:
    """A seeded batch inside the graph's input range (standard normal when unbounded)."""
    gen = torch.Generator().manual_seed(seed)
    if value_range is None:
        return torch.randn((batch, *shape), generator=gen)
    lo, hi = value_range
    return lo + (hi - lo) * torch.rand((batch, *shape), generator=gen)


@contextlib.contextmanager
def _quiet():
    """Silence the exporters' chatter (torchvision notices, deprecations) during one export."""
    loggers = [
        logging.getLogger(n) for n in ("torch.onnx", "torch.export", "torch.fx", "torch._dynamo")
    ]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    sink = io.StringIO()  # a failing dynamo export prints its whole graph otherwise
    try:
        with (
            warnings.catch_warnings(),
            contextlib.redirect_stdout(sink),
            contextlib.redirect_stderr(sink),
        ):
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def _first_line(exc: BaseException) -> str:
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(exc)).strip()
    line = text.splitlines()[0] if text else ""
    return f"{type(exc).__name__}: {line}"[:300]


def _convert(graph: Any, example: torch.Tensor) -> tuple[onnx.ModelProto, str, str | None]:
    """ONNX for one graph: the dynamo exporter first, the TorchScript one only if it fails."""
    names = {"input_names": [graph.input_name], "output_names": list(graph.output_names)}
    try:
        with _quiet():
            program = torch.onnx.export(
                graph.module,
                (example,),
                dynamo=True,
                dynamic_shapes=({0: torch.export.Dim("batch")},),
                optimize=True,
                verbose=False,
                **names,
            )
        return program.model_proto, "dynamo", None
    except Exception as exc:  # any failure of the new exporter earns one try with the old one
        dynamo_error = _first_line(exc.__cause__ or exc)  # the cause names the real problem
    axes = {name: {0: "batch"} for name in [graph.input_name, *graph.output_names]}
    buffer = io.BytesIO()
    try:
        with _quiet():
            torch.onnx.export(
                graph.module,
                (example,),
                buffer,
                dynamo=False,
                dynamic_axes=axes,
                opset_version=20,
                **names,
            )
    except Exception as exc:
        raise ExportError(
            f"Graph '{graph.name}' could not be exported: the dynamo exporter failed "
            f"({dynamo_error}) and so did the TorchScript exporter ({_first_line(exc)})."
        ) from None
    return onnx.load_from_string(buffer.getvalue()), "torchscript", dynamo_error


def _torch_outputs(module: torch.nn.Module, x: torch.Tensor) -> list[np.ndarray]:
    """The reference: the torch module's outputs as float32 arrays, in declared order."""
    with torch.inference_mode():
        out = module(x)
    if isinstance(out, dict):
        out = list(out.values())
    if isinstance(out, torch.Tensor):
        out = [out]
    return [o.detach().cpu().float().numpy() for o in out]


def _validate(graph: Any, path: Path, model_id: str) -> dict[str, Any]:
    """Check one written file against torch; raise ExportError naming the graph on any mismatch."""
    from .telemetry import ort  # onnxruntime with its telemetry off (aelab.telemetry)

    where = f"Graph '{graph.name}' of model '{model_id}'"
    try:
        onnx.checker.check_model(str(path), full_check=True)
    except Exception as exc:
        raise ExportError(f"{where} fails onnx.checker ({_first_line(exc)}).") from None
    session = ort.InferenceSession(str(path), session_options(), providers=["CPUExecutionProvider"])
    inputs, outputs = session.get_inputs(), session.get_outputs()
    got_in, got_out = [i.name for i in inputs], [o.name for o in outputs]
    if got_in != [graph.input_name] or got_out != list(graph.output_names):
        raise ExportError(
            f"{where} has inputs {got_in} and outputs {got_out}, expected [{graph.input_name!r}] "
            f"and {list(graph.output_names)}."
        )
    if inputs[0].type != "tensor(float)":
        raise ExportError(f"{where} takes {inputs[0].type}, expected tensor(float).")
    if len(inputs[0].shape) != len(graph.input_shape) + 1 or isinstance(inputs[0].shape[0], int):
        raise ExportError(
            f"{where} has input shape {inputs[0].shape}, expected a dynamic batch axis first."
        )
    worst, worst_allowed = 0.0, TOLERANCE
    for i, batch in enumerate(VALIDATION_BATCHES):
        x = _example(tuple(graph.input_shape), graph.input_range, batch, SEED + 1 + i)
        want = _torch_outputs(graph.module, x)
        if len(want) != len(graph.output_names):
            raise ExportError(
                f"{where} returns {len(want)} outputs in torch but declares {len(graph.output_names)}."
            )
        got = session.run(None, {graph.input_name: x.numpy()})
        for name, w, g in zip(graph.output_names, want, got):
            if g.shape != w.shape:
                raise ExportError(
                    f"{where}: output '{name}' has shape {list(g.shape)} in onnxruntime but "
                    f"{list(w.shape)} in torch at batch {batch}."
                )
            if g.dtype != np.float32:
                raise ExportError(f"{where}: output '{name}' is {g.dtype}, expected float32.")
            if not np.isfinite(w).all():
                raise ExportError(
                    f"{where}: the torch model itself outputs NaN or infinity in '{name}'."
                )
            diff = float(np.max(np.abs(g.astype(np.float64) - w)) if w.size else 0.0)
            allowed = allowed_difference(w)
            if not np.isfinite(diff) or diff > allowed:
                raise ExportError(
                    f"{where} does not match torch: output '{name}' differs by {diff:.3g} at "
                    f"batch {batch} (allowed {allowed:.3g}); nothing was written."
                )
            worst = max(worst, diff)
            worst_allowed = max(worst_allowed, allowed)
    return {
        "passed": True,
        "checker": "onnx.checker.check_model(full_check=True)",
        "provider": session.get_providers()[0],
        "batch_sizes": list(VALIDATION_BATCHES),
        "max_abs_diff": worst,
        # 1e-4, or 1e-4 × the largest |output| where outputs exceed ±1
        "tolerance": worst_allowed,
        "seed": SEED,
    }


def _describe(
    graph: Any, common: dict[str, Any], out_shapes: dict[str, list[int]]
) -> dict[str, Any]:
    """What the file says about itself (also the manifest's entry, less the checksum)."""
    bounded = graph.input_range is not None
    return {
        "name": graph.name,
        "file": f"{graph.name}.onnx",
        # What the graph does and whether N(0, I) inputs generate data: the runtime's verbs
        # choose graphs by these, never by name.
        "role": _role(graph),
        "prior": _prior(graph),
        "input": {
            "name": graph.input_name,
            "shape": ["batch", *graph.input_shape],
            "dtype": "float32",
            "range": list(graph.input_range) if bounded else None,
            # Codes and noise are drawn, not scaled: only data inputs carry preprocessing.
            "preprocessing": {
                k: common["preprocessing"][k]
                for k in ("scaling", "range", "clip", "series")
                if k in common["preprocessing"]
            }
            if bounded
            else None,
            "distribution": None if bounded else graph.input_note or STANDARD_NORMAL,
        },
        "outputs": [
            {"name": n, "shape": ["batch", *out_shapes[n]], "dtype": "float32"}
            for n in graph.output_names
        ],
    }


def _stamp(proto: onnx.ModelProto, entry: dict[str, Any], common: dict[str, Any]) -> None:
    """Write the description into the file's metadata_props, one JSON value per key."""
    props = {
        "aelab_version": __version__,
        "model": common["model"],
        "run_id": common["run_id"],
        "params": json.dumps(common["params"], sort_keys=True),
        "graph": entry["name"],
        "role": entry["role"],
        "prior": json.dumps(entry["prior"]),  # "normal" in quotes, or null
        "exporter": entry["exporter"],
        "input": json.dumps(entry["input"]),
        "outputs": json.dumps(entry["outputs"]),
        "preprocessing": json.dumps(entry["input"]["preprocessing"]),
        "data": json.dumps(common["data"]),
    }
    del proto.metadata_props[:]
    for key, value in props.items():
        item = proto.metadata_props.add()
        item.key, item.value = META_PREFIX + key, value
    proto.doc_string = f"aelab {common['model']} {entry['name']} graph (run {common['run_id']})"


def _common(spec: Any, params: Any, run_id: str, data_meta: dict, model: Any) -> dict[str, Any]:
    params_dict = params.model_dump() if hasattr(params, "model_dump") else dict(params or {})
    scaling = (data_meta or {}).get("scaling") or {"method": "none"}
    sample_shape = list((data_meta or {}).get("sample_shape") or getattr(model, "sample_shape", []))
    common = {
        "model": spec.id,
        "run_id": run_id,
        "params": params_dict,
        "data": {
            "name": (data_meta or {}).get("name"),
            "kind": (data_meta or {}).get("kind"),
            "sample_shape": sample_shape,
            "scaling": scaling,
            "label_names": (data_meta or {}).get("label_names"),
        },
        "preprocessing": {
            "scaling": scaling,
            "range": [0.0, 1.0],
            "clip": True,
            "how": "x = clip(scale(raw), 0, 1), float32, shape (N, *input shape); scale: "
            "none: raw; divide: raw / scale; minmax: (raw - min) / (max - min), 0 where max == min",
        },
    }
    if scaling.get("method") == WINDOW_METHOD:
        common["preprocessing"]["how"] += (
            f"; {WINDOW_METHOD}: minmax per channel of each window, with that window's own min "
            "and max"
        )
    for key in ("feature_names", "series"):
        if (data_meta or {}).get(key) is not None:
            common["data"][key] = data_meta[key]
    series = (data_meta or {}).get("series")
    if series:
        # How an app cuts its own long series into the windows this model takes; the runtime's
        # ExportedModel.series_windows does exactly this.
        common["preprocessing"]["series"] = {
            **{k: series.get(k) for k in ("window", "stride", "scaling", "channels")},
            "time_column": series.get("time_column"),
            "how": HOW,
        }
    return common


def export_model(
    model: Any,
    spec: Any,
    params: Any,
    *,
    run_id: str,
    data_meta: dict,
    out_dir: str | Path | None = None,
    graphs: list[str] | None = None,
    force: bool = False,
    manifest_extra: dict[str, Any] | None = None,
) -> ExportResult:
    """Export, check and atomically write the model's graphs with a manifest.

    ``manifest_extra``: more top-level manifest entries (``export_run`` records the run's status).
    """
    dest = _destination(out_dir, run_id)
    _check_replaceable(dest, force)  # before any work; checked again once the name is locked
    from . import layout

    model = layout.contiguous_copy(model)  # the graph and its check on plain weights
    if any(p.device.type != "cpu" for p in model.parameters()):
        # Export and validate a CPU copy: the caller's model stays where it is, and CPU torch is
        # the reference onnxruntime's CPU provider is held to (no TF32 convolutions).
        model = copy.deepcopy(model).cpu()
    selected = _select_graphs(model, graphs)
    common = _common(spec, params, run_id, data_meta, model)
    dest.parent.mkdir(parents=True, exist_ok=True)
    with fsio.folder_lock(dest):
        # Repair an interrupted export (the previous one comes back) and drop stale folders.
        fsio.tidy_folder(dest, MANIFEST)
        if dest.parent.resolve() == exports_root().resolve():
            fsio.sweep_folder(dest.parent, MANIFEST, skip=dest.name)
        _check_replaceable(dest, force)
        return _write(model, spec, selected, common, dest, manifest_extra or {})


def _write(
    model: Any, spec: Any, selected: list[Any], common: dict, dest: Path, extra: dict
) -> ExportResult:
    """Convert and validate every graph into a temporary sibling folder, then publish it."""
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.tmp-", dir=dest.parent))
    tmp.chmod(0o755)  # mkdtemp makes it private; the published export should read like any folder
    was_training = model.training
    model.eval()
    try:
        entries = []
        for graph in selected:
            graph.module.eval()
            path = tmp / f"{graph.name}.onnx"
            if path.resolve().parent != tmp.resolve():  # belt and braces after the name check
                raise ExportError(
                    f"Graph name {graph.name!r} would write outside the export folder."
                )
            example = _example(tuple(graph.input_shape), graph.input_range, EXPORT_BATCH, SEED)
            proto, exporter, dynamo_error = _convert(graph, example)
            # Output shapes come from torch itself so the metadata never guesses.
            shapes = {
                n: list(o.shape[1:])
                for n, o in zip(graph.output_names, _torch_outputs(graph.module, example))
            }
            entry = {**_describe(graph, common, shapes), "exporter": exporter}
            entry["opset"] = next(
                (o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), None
            )
            if dynamo_error:
                entry["dynamo_error"] = dynamo_error
            _stamp(proto, entry, common)
            onnx.save_model(proto, str(path))
            entry["validation"] = _validate(graph, path, spec.id)
            entry["sha256"] = sha256_file(path)
            entry["bytes"] = path.stat().st_size
            entries.append(entry)
        manifest = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "aelab_version": __version__,
            "torch_version": torch.__version__,
            "onnx_version": onnx.__version__,
            "created_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            **{k: common[k] for k in ("model", "run_id", "params", "data", "preprocessing")},
            "model_name": getattr(spec, "name", spec.id),
        }
        clash = sorted(set(extra) & {*manifest, "graphs"})
        if clash:
            raise ExportError(
                f"Extra manifest entries cannot replace its own ({', '.join(clash)})."
            )
        manifest = {**manifest, **extra, "graphs": entries}
        (tmp / MANIFEST).write_text(
            json.dumps(manifest, indent=2, allow_nan=False) + "\n", encoding="utf-8"
        )
        fsio.sync_folder(tmp)
        fsio.replace_folder(tmp, dest)  # the previous export is deleted only once replaced
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        model.train(was_training)
    files = [dest / e["file"] for e in manifest["graphs"]]
    return ExportResult(folder=dest, manifest=manifest, files=files)


# -- runs ------------------------------------------------------------------------------------
def export_run(
    run: Any,
    *,
    out_dir: str | os.PathLike | None = None,
    graphs: list[str] | None = None,
    force: bool = False,
    allow_diverged: bool = False,
) -> ExportResult:
    """Export a saved run (an id, a run folder, or a loaded Run).

    A run whose training diverged is refused unless ``allow_diverged``; its manifest then
    records that (``run_status`` and ``diverged_at``).
    """
    from .runs import load_run

    if isinstance(run, (str, os.PathLike)):
        run = load_run(run)
    status = getattr(run, "status", None)
    extra: dict[str, Any] = {"run_status": status} if status else {}
    if status == "diverged":
        diverged_at = (getattr(run, "details", None) or {}).get("diverged_at")
        if not allow_diverged:
            raise ExportError(
                f"Run '{run.run_id}' diverged {_where(diverged_at)}, so it is exported only on "
                f"purpose: pass --allow-diverged (allow_diverged=True in Python) to export its "
                "last good weights anyway."
            )
        extra["diverged_at"] = diverged_at
    records, notes = application_records(run, graphs)
    if records:
        extra["applications"] = records
    if notes:
        extra["application_notes"] = notes
    return export_model(
        run.model,
        run.spec,
        run.params,
        run_id=run.run_id,
        data_meta=run.data_meta,
        out_dir=out_dir,
        graphs=graphs,
        force=force,
        manifest_extra=extra,
    )


def application_records(
    run: Any, graphs: list[str] | None = None
) -> tuple[dict[str, dict], dict[str, str]]:
    """What each registered application that serves the run's model records for the runtime
    (``ApplicationSpec.export_record(model, data, run)``, ``data`` being the run's held-out
    data: its validation split, else its training data, None when it cannot be loaded), and a
    sentence for each one that could not record. A record naming a ``graph`` that is not
    exported is left out."""
    from .data import load_run_data
    from .errors import AelabError
    from .plugins import get_applications

    model = run.model
    apps = [
        spec
        for spec in get_applications().values()
        if spec.export_record is not None and spec.reason_unavailable(model) is None
    ]
    if not apps:
        return {}, {}
    exported = {g.name for g in _select_graphs(model, graphs)}
    try:
        train, val = load_run_data(run.data_meta, run.config.val_fraction, run.config.seed)
        data = val if val is not None else train
    except AelabError:
        data = None
    records: dict[str, dict] = {}
    notes: dict[str, str] = {}
    for spec in apps:
        try:
            record = spec.export_record(model, data, run)
            json.dumps(record, allow_nan=False)
        except AelabError as exc:
            notes[spec.id] = str(exc)
            continue
        except Exception as exc:  # a broken application must not break the export
            notes[spec.id] = f"its export record failed ({_first_line(exc)})."
            continue
        if record is None:
            continue
        if not isinstance(record, dict):
            notes[spec.id] = f"its export record is a {type(record).__name__}, not a JSON object."
            continue
        graph = record.get("graph")
        if graph is not None and graph not in exported:
            notes[spec.id] = f"it needs the graph '{graph}', which this export leaves out."
            continue
        records[spec.id] = record
    return records, notes


def _where(diverged_at: Any) -> str:
    """'at epoch 3, step 120 (its kl loss became NaN or infinite)', as far as it is known."""
    if not isinstance(diverged_at, dict):
        return "during training (where is not recorded)"
    epoch, step = diverged_at.get("epoch"), diverged_at.get("step")
    if diverged_at.get("phase") == "validation" and epoch is not None:
        place = f"while validating epoch {epoch}"
    else:
        known = [f"{k} {v}" for k, v in (("epoch", epoch), ("step", step)) if v is not None]
        place = f"at {', '.join(known)}" if known else "during training"
    terms = diverged_at.get("terms")
    terms = [str(t) for t in terms if t != "loss"] if isinstance(terms, list) else []
    if len(terms) > 1:
        what = f"its {', '.join(terms[:-1])} and {terms[-1]} losses"
    else:
        what = f"its {terms[0]} loss" if terms else "its loss"
    return f"{place} ({what} became NaN or infinite)"
