"""Saved runs: ``runs/<id>/`` holds safetensors weights and JSON metadata, saved all-or-nothing.

A run is its folder: the folder's name is the run id. One save writes the new version beside the
old one (``weights-<n>.safetensors``, ``optimizer-<n>.safetensors``, each through a temporary file)
and then switches to it with one atomic rename of ``run.json``, which names the files it belongs
to (with their sha256). Only after the switch are the previous version's files deleted. A crash
at any moment (``kill -9``, power loss) so leaves either the previous complete run or the new
complete one; the leftovers of an interrupted save are removed by the next save or lock.

While a run trains, its folder holds ``.lock`` (:func:`lock_run`), so a second process (or a
second tab of the lab) cannot train the same run at the same time.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from safetensors import SafetensorError

from . import __version__, fsio
from .errors import AelabError, RunError
from .fsio import FileLock, fsync_dir, is_held, read_holder, write_bytes_atomic
from .ids import check_id, is_id, show
from .params import Params, TrainConfig, validate

if TYPE_CHECKING:  # torch is imported where weights are saved or loaded, not to list runs
    import torch

META = "run.json"
LOCK = ".lock"
WEIGHTS = "weights.safetensors"  # the layout before versioned files; still loaded
OPTIMIZER = "optimizer.safetensors"
# Keys of run.json that save_run writes itself; ``details`` may not override them.
RESERVED = frozenset(
    "run_id aelab_version model plugin params train data sample_shape status saved_at history "
    "optimizer version files sha256".split()
)
_VERSIONED = re.compile(r"(weights|optimizer)(?:-(\d+))?\.safetensors")
# Temporary files of a save (``.weights-3.safetensors.tmp-1a2b``), and those of older aelab
# versions (``.run.json.k2j4_x9a`` from tempfile.mkstemp).
_TEMPORARY = re.compile(r"\.(?:run\.json|(?:weights|optimizer)(?:-\d+)?\.safetensors)\..+")


def runs_root(runs_dir: str | os.PathLike | None = None) -> Path:
    """The folder runs live in: the argument, ``AELAB_RUNS_DIR``, or ./runs."""
    return Path(runs_dir or os.environ.get("AELAB_RUNS_DIR") or "runs")


def new_run_id(model_id: str) -> str:
    """A fresh, sortable, filesystem-safe run id."""
    safe = re.sub(r"[^A-Za-z0-9_-]", "-", model_id)[:40].lstrip("-_") or "model"
    return f"{safe}-{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(2)}"


def write_json(path: Path, obj: Any) -> None:
    """Atomically (and durably) write ``obj`` as indented JSON."""
    text = json.dumps(obj, indent=2, allow_nan=False) + "\n"
    write_bytes_atomic(path, text.encode("utf-8"))


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _tensors(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    # safetensors refuses shared or non-contiguous storage, so save independent copies.
    return {k: v.detach().to("cpu").contiguous().clone() for k, v in state.items()}


def optimizer_tensors(
    optimizers: dict[str, torch.optim.Optimizer],
) -> tuple[dict[str, torch.Tensor], dict]:
    """Split optimizer state into tensors (for safetensors) and plain JSON."""
    import torch

    tensors: dict[str, torch.Tensor] = {}
    meta: dict[str, Any] = {}
    for name, opt in optimizers.items():
        sd = opt.state_dict()
        plain_state: dict[str, dict[str, Any]] = {}
        for idx, st in sd["state"].items():
            for key, val in st.items():
                if isinstance(val, torch.Tensor):
                    tensors[f"{name}.{idx}.{key}"] = val
                else:
                    plain_state.setdefault(str(idx), {})[key] = val
        groups = json.loads(json.dumps(sd["param_groups"], default=lambda o: None))
        meta[name] = {
            "param_groups": groups,
            "state": plain_state,
            "indices": [str(i) for i in sd["state"]],
        }
    return _tensors(tensors), meta


IMPLEMENTATION_KEYS = ("fused", "foreach", "capturable", "differentiable")


def load_optimizer_state(
    optimizers: dict[str, torch.optim.Optimizer], saved: dict[str, Any]
) -> None:
    """Restore optimizer state saved by :func:`optimizer_tensors` (skips optimizers it lacks)."""
    tensors, meta = saved["tensors"], saved["meta"]
    for name, opt in optimizers.items():
        if name not in meta:
            continue
        state: dict[int, dict[str, Any]] = {}
        for idx in meta[name]["indices"]:
            entry = dict(meta[name]["state"].get(idx, {}))
            prefix = f"{name}.{idx}."
            entry.update({k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)})
            state[int(idx)] = entry
        groups = meta[name]["param_groups"]
        for g, current in zip(groups, opt.param_groups):
            if g.get("betas") is not None:
                g["betas"] = tuple(g["betas"])
            # Which kernel runs the step is this machine's choice, not part of the state: a run
            # saved by an older aelab (or on another device) resumes with today's fused kernels.
            for key in IMPLEMENTATION_KEYS:
                if key in current:
                    g[key] = current[key]
        try:
            opt.load_state_dict({"state": state, "param_groups": groups})
        except (ValueError, KeyError) as exc:
            raise RunError(
                f"The saved optimizer state for '{name}' does not fit this model ({exc})."
            ) from None


# -- the files of one version ---------------------------------------------------------------
def _read_meta(folder: Path) -> dict[str, Any] | None:
    """The folder's run.json, None when there is none; RunError when it is not readable JSON."""
    try:
        meta = json.loads((folder / META).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RunError(f"{folder / META} is not readable JSON ({exc}).") from None
    if not isinstance(meta, dict):
        raise RunError(f"{folder / META} does not hold a JSON object; it is not an aelab run.")
    return meta


def _named_files(meta: dict[str, Any], folder: Path) -> dict[str, str]:
    """The weights and optimizer files a run.json belongs to (the old fixed names if it predates
    versioned files); each checked to be a plain name inside the run folder."""
    files = meta.get("files")
    if files is None:
        return {"weights": WEIGHTS, "optimizer": OPTIMIZER}
    if not isinstance(files, dict) or not isinstance(files.get("weights"), str):
        raise RunError(f"{folder / META} has a malformed 'files' entry; it is not an aelab run.")
    named = {kind: name for kind, name in files.items() if name is not None}
    for name in named.values():
        check_id(name, f"the file named in {folder / META}", error=RunError)
    return named


def _version_of(name: str) -> int:
    match = _VERSIONED.fullmatch(name)
    return int(match.group(2)) if match and match.group(2) else 0


def clean_leftovers(folder: str | os.PathLike) -> list[str]:
    """Delete what interrupted saves left in a run folder: temporary files, and weights or
    optimizer files that run.json does not name. Returns the names deleted.

    Call it only while no other process saves this run (holding :func:`lock_run`, or from
    :func:`save_run` itself); files it does not recognise are never touched.
    """
    folder = Path(folder)
    try:
        meta = _read_meta(folder)
        keep = set(_named_files(meta, folder).values()) if meta is not None else set()
    except RunError:  # an unreadable run.json: keep every data file, drop temporaries only
        keep = None
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        name = entry.name
        stale = bool(_TEMPORARY.fullmatch(name)) or (
            keep is not None and bool(_VERSIONED.fullmatch(name)) and name not in keep
        )
        if stale and entry.is_file(follow_symlinks=False):
            try:
                os.unlink(entry.path)
                removed.append(name)
            except OSError:
                pass
    return removed


def save_run(
    run_id: str | None,
    spec: Any,
    params: Params,
    config: TrainConfig,
    model: torch.nn.Module,
    optimizers: dict[str, torch.optim.Optimizer],
    history: list[dict[str, Any]],
    data_meta: dict[str, Any],
    *,
    runs_dir: str | os.PathLike | None = None,
    status: str = "completed",
    folder: str | os.PathLike | None = None,
    details: dict[str, Any] | None = None,
) -> Path:
    """Save a run all-or-nothing into ``folder`` (or ``runs_dir/run_id``); returns the folder.

    The folder's name is the run id. ``details`` are extra top-level entries of run.json (such
    as ``diverged_at``). The caller should hold the run's lock (:func:`lock_run`) or otherwise
    be the only process saving it.
    """
    if folder is not None:
        folder = Path(folder)
        if run_id is not None and run_id != folder.name:
            raise RunError(
                f"Run id {show(run_id)} does not match the folder {folder} it would be saved in; "
                "a run's id is its folder's name."
            )
    else:
        folder = runs_root(runs_dir) / check_id(run_id, "run id", error=RunError)
    run_id = check_id(folder.name, "run id (the run folder's name)", error=RunError)
    clash = sorted(set(details or {}) & RESERVED)
    if clash:
        raise RunError(f"Run details cannot replace run.json's own entries ({', '.join(clash)}).")
    from safetensors.torch import save as save_tensors

    weights = _tensors(model.state_dict())
    opt_tensors, opt_meta = optimizer_tensors(optimizers)
    blobs = {
        "weights": save_tensors(weights, metadata={"model": spec.id}),
        "optimizer": save_tensors(opt_tensors),
    }
    meta: dict[str, Any] = {
        "run_id": run_id,
        "aelab_version": __version__,
        "model": spec.id,
        "plugin": spec.plugin,
        "params": params.model_dump(),
        "train": config.model_dump(),
        "data": data_meta,
        "sample_shape": list(model.sample_shape),
        "status": status,
        "saved_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        **(details or {}),
        "history": history,
        "optimizer": opt_meta,
    }
    try:
        text = json.dumps(meta, indent=2, allow_nan=False) + "\n"
    except (TypeError, ValueError) as exc:
        raise RunError(
            f"Run '{run_id}' cannot be saved: its metadata is not JSON ({exc})."
        ) from None

    written: list[Path] = []
    try:
        folder.mkdir(parents=True, exist_ok=True)
        try:
            previous = (_read_meta(folder) or {}).get("version", 0)
        except RunError:
            previous = 0
        # Above every version present, stale ones included: nothing of a version run.json may
        # still name is ever overwritten.
        present = [_version_of(p.name) for p in folder.iterdir()]
        version = max([previous if isinstance(previous, int) else 0, *present]) + 1
        files = {kind: f"{kind}-{version}.safetensors" for kind in blobs}
        for kind, blob in blobs.items():
            written.append(folder / files[kind])
            write_bytes_atomic(folder / files[kind], blob, sync_dir=False)
        fsync_dir(folder)  # the new files are durable before run.json can name them
        meta = {
            **meta,
            "version": version,
            "files": files,
            "sha256": {kind: _sha256(blob) for kind, blob in blobs.items()},
        }
        text = json.dumps(meta, indent=2, allow_nan=False) + "\n"
        write_bytes_atomic(folder / META, text.encode("utf-8"))  # the switch
    except OSError as exc:
        for path in written:  # not named by run.json: the previous version stays whole
            try:
                os.unlink(path)
            except OSError:
                pass
        raise RunError(
            f"Run '{run_id}' could not be saved in {folder} ({exc.strerror or exc}); its "
            "previous save, if any, is unchanged."
        ) from None
    clean_leftovers(folder)  # the previous version and any earlier leftovers
    return folder


@dataclass
class Run:
    """A saved run, loaded back: its model, settings and history.

    ``run_id`` is the folder's name and ``path`` the folder; a resumed run is saved back there.
    ``details`` holds run.json's extra entries (``diverged_at`` for a diverged run).

    ``optimizer_error`` is None, or one sentence saying why the saved optimizer state could not
    be loaded (missing, truncated, altered). Such a run still evaluates and exports, but reading
    ``optimizer_state`` (which resuming does) raises :class:`RunError` with that sentence, so a
    resume never silently restarts the optimizer.
    """

    run_id: str
    path: Path
    spec: Any
    params: Params
    config: TrainConfig
    model: Any
    history: list[dict[str, Any]]
    data_meta: dict[str, Any]
    status: str
    saved_optimizer_state: dict[str, Any] | None = field(default=None, repr=False)
    optimizer_error: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def optimizer_state(self) -> dict[str, Any] | None:
        """The optimizer state to resume with; RunError if it was damaged (see the class)."""
        if self.optimizer_error:
            raise RunError(self.optimizer_error)
        return self.saved_optimizer_state

    @optimizer_state.setter
    def optimizer_state(self, value: dict[str, Any] | None) -> None:
        self.saved_optimizer_state, self.optimizer_error = value, None

    @property
    def series(self) -> dict[str, Any] | None:
        """How the run's time series was cut into windows (window, stride, scaling, channels,
        time and label columns), or None when it was not trained on a series; pass it as
        ``load_data(source, series=run.series)`` to cut new data the same way."""
        return (self.data_meta or {}).get("series")

    @property
    def final_losses(self) -> dict[str, float]:
        """The last epoch's training losses."""
        return self.history[-1]["losses"] if self.history else {}

    @property
    def final_val_losses(self) -> dict[str, float]:
        """The last epoch's validation losses."""
        return self.history[-1]["val_losses"] if self.history else {}


def resolve(run: str | os.PathLike, runs_dir: str | os.PathLike | None = None) -> Path:
    """A run id inside the runs folder, or else an explicit path to a run folder."""
    name = os.fspath(run)
    if is_id(name):
        candidate = runs_root(runs_dir) / name
        if (candidate / META).is_file():
            return candidate
    path = Path(name)
    if name and (path / META).is_file():
        return path
    if not is_id(name) and not any(sep in name for sep in ("/", "\\")):
        check_id(name, "run id", error=RunError)  # says what is wrong with it
    raise RunError(
        f"No saved run {show(name)} in {runs_root(runs_dir)}; `aelab runs` lists the saved runs."
    )


def load_run(
    run: str | os.PathLike, runs_dir: str | os.PathLike | None = None, device: str = "cpu"
) -> Run:
    """Load a run (an id, or a path to a run folder) without unpickling anything."""
    return _load_folder(resolve(run, runs_dir), device)


def load_run_by_id(
    run_id: str, runs_dir: str | os.PathLike | None = None, device: str = "cpu"
) -> Run:
    """Load a run by its id only, never a path: nothing outside the runs folder is reachable."""
    check_id(run_id, "run id", error=RunError)
    folder = runs_root(runs_dir) / run_id
    if not (folder / META).is_file():
        raise RunError(
            f"No saved run {show(run_id)} in {runs_root(runs_dir)}; `aelab runs` lists the "
            "saved runs."
        )
    return _load_folder(folder, device)


def _read_version(folder: Path) -> tuple[dict[str, Any], dict[str, str], bytes, bytes | None]:
    """run.json and the bytes of the files it names, all of one version.

    A save running meanwhile may delete the files of the version just read once it has
    switched; then run.json names newer ones and is read again.
    """
    for _ in range(10):
        meta = _read_meta(folder)
        if meta is None:
            raise RunError(f"{folder} holds no {META}; it is not a saved run.")
        files = _named_files(meta, folder)
        try:
            weights = (folder / files["weights"]).read_bytes()
        except FileNotFoundError:
            if _switched(folder, meta):
                continue
            raise RunError(
                f"{folder / files['weights']} is missing, although {folder / META} names it."
            ) from None
        except OSError as exc:
            raise RunError(f"{folder / files['weights']} cannot be read ({exc}).") from None
        optimizer = None
        if _has_optimizer(meta, files):
            try:
                optimizer = (folder / files["optimizer"]).read_bytes()
            except FileNotFoundError:
                if _switched(folder, meta):
                    continue
            except OSError:
                pass  # reported as a damaged optimizer state by the caller
        return meta, files, weights, optimizer
    raise RunError(f"{folder} changed on every attempt to read it; try again.")


def _has_optimizer(meta: dict[str, Any], files: dict[str, str]) -> bool:
    """Whether the run has optimizer state to load: always with versioned files; in the old
    layout when run.json describes some."""
    if not files.get("optimizer") or not isinstance(meta.get("optimizer"), dict):
        return False
    return "files" in meta or bool(meta["optimizer"])


def _switched(folder: Path, meta: dict[str, Any]) -> bool:
    try:
        now = _read_meta(folder)
    except RunError:
        return False
    return now is not None and now.get("files") != meta.get("files")


def _load_folder(folder: Path, device: str) -> Run:
    import torch
    from safetensors.torch import load as load_tensors

    from .plugins import get_model

    run_id = check_id(folder.name, "run id (the run folder's name)", error=RunError)
    meta, files, weights_blob, optimizer_blob = _read_version(folder)
    for key in ("model", "params", "train", "data", "sample_shape"):
        if key not in meta:
            raise RunError(f"{folder / META} lacks the '{key}' entry; it is not an aelab run.")
    check_meta_types(meta, folder / META)
    spec = get_model(meta["model"])
    key = "params"
    try:
        params = spec.validate_params(meta["params"])
        key = "train"
        config = validate(TrainConfig, meta["train"], "training settings")
    except AelabError as exc:
        raise RunError(
            f"{folder / META}: the '{key}' entry is invalid ({str(exc).rstrip('.')}); the file "
            "was damaged or edited by hand."
        ) from None
    kind = meta["data"].get("kind", "image" if len(meta["sample_shape"]) == 3 else "flat")
    model = spec.build(params, tuple(meta["sample_shape"]), kind)
    sums = meta.get("sha256") or {}
    weights_path = folder / files["weights"]
    if sums.get("weights") and _sha256(weights_blob) != sums["weights"]:
        raise RunError(
            f"{weights_path} does not match its sha256 in {META}; the file was damaged or altered."
        )
    try:
        state = load_tensors(weights_blob)
        if device != "cpu":
            state = {k: v.to(device) for k, v in state.items()}
        model.load_state_dict(state)
    except (SafetensorError, RuntimeError) as exc:
        reason = str(exc).strip().splitlines()[0]
        raise RunError(
            f"{weights_path} cannot be loaded into model '{spec.id}' ({reason})."
        ) from None
    from . import layout

    layout.apply(model, torch.device(device) if isinstance(device, str) else device)
    model.eval()
    opt_state, opt_error = None, None
    if _has_optimizer(meta, files):
        problem = None
        if optimizer_blob is None:
            problem = "is missing or unreadable"
        elif sums.get("optimizer") and _sha256(optimizer_blob) != sums["optimizer"]:
            problem = f"does not match its sha256 in {META} (damaged or altered)"
        else:
            try:
                opt_state = {"tensors": load_tensors(optimizer_blob), "meta": meta["optimizer"]}
            except SafetensorError as exc:
                problem = f"cannot be read ({str(exc).strip().splitlines()[0]})"
        if problem:
            opt_error = (
                f"Run '{run_id}' cannot be continued: its optimizer state "
                f"{folder / files['optimizer']} {problem}; it can still be evaluated and exported."
            )
    details = {k: v for k, v in meta.items() if k not in RESERVED}
    return Run(
        run_id=run_id,
        path=folder,
        spec=spec,
        params=params,
        config=config,
        model=model,
        history=meta.get("history", []),
        data_meta=meta["data"],
        status=meta.get("status", "completed"),
        saved_optimizer_state=opt_state,
        optimizer_error=opt_error,
        details=details,
    )


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _history_problem(history: Any) -> str | None:
    """What is wrong with a run.json's history (None: a list of per-epoch records)."""
    if not isinstance(history, list):
        return f"must be a list of per-epoch records, not {_shown(history)}"
    for i, entry in enumerate(history):
        if not isinstance(entry, dict) or not _is_int(entry.get("epoch")):
            return f"must hold per-epoch records with a whole-number 'epoch', but item {i} is " + (
                _shown(entry)
            )
        for key in ("losses", "val_losses", "metrics", "val_metrics"):
            if entry.get(key) is not None and not isinstance(entry[key], dict):
                return f"item {i} has '{key}' {_shown(entry[key])}, not a record of numbers"
    return None


def check_meta_types(meta: dict[str, Any], where: Path) -> None:
    """A RunError naming run.json and the field when an entry has the wrong type (a string for
    the model id; records for params, train, data, sha256 and optimizer; a list of positive
    whole numbers for sample_shape; a list of per-epoch records for history)."""
    records = ("params", "train", "data", "sha256", "optimizer")
    problems = {
        key: "must be a record of names and values"
        for key in records
        if meta.get(key) is not None and not isinstance(meta[key], dict)
    }
    if "model" in meta and not isinstance(meta["model"], str):
        problems["model"] = "must be a model id (a string)"
    for key in ("status", "saved_at"):
        if meta.get(key) is not None and not isinstance(meta[key], str):
            problems[key] = "must be a string"
    shape = meta.get("sample_shape")
    if "sample_shape" in meta and not (
        isinstance(shape, list) and shape and all(_is_int(n) and n > 0 for n in shape)
    ):
        problems["sample_shape"] = "must be a list of positive whole numbers, like [1, 28, 28]"
    problems = {key: f"{problem}, not {_shown(meta[key])}" for key, problem in problems.items()}
    if "history" in meta and (problem := _history_problem(meta["history"])):
        problems["history"] = problem
    if problems:
        key, problem = next(iter(problems.items()))
        raise RunError(
            f"{where}: the '{key}' entry {problem}; the file was damaged or edited by hand."
        )


def _shown(value: Any) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 40 else f"a {type(value).__name__}"


def list_runs(runs_dir: str | os.PathLike | None = None) -> list[dict[str, Any]]:
    """Summaries of every saved run, newest first (the run id is the folder's name)."""
    root = runs_root(runs_dir)
    out: list[dict[str, Any]] = []
    if not root.is_dir():
        return out
    for folder in root.iterdir():
        if not is_id(folder.name) or not (folder / META).is_file():
            continue
        try:
            meta = _read_meta(folder) or {}
            check_meta_types(meta, folder / META)
        except RunError:
            continue  # a damaged run.json: listed by nobody, reported when the run is loaded
        hist = meta.get("history") or []
        out.append(
            {
                "run_id": folder.name,
                "model": meta.get("model"),
                "data": (meta.get("data") or {}).get("name"),
                "epochs": hist[-1]["epoch"] if hist else 0,
                "status": meta.get("status"),
                "losses": hist[-1]["losses"] if hist else {},
                "val_losses": hist[-1]["val_losses"] if hist else {},
                "saved_at": meta.get("saved_at"),
                "path": str(folder),
            }
        )
    out.sort(key=lambda r: r.get("saved_at") or "", reverse=True)
    return out


# -- the training lock ------------------------------------------------------------------------
class RunLock:
    """Held while a run trains (see :func:`lock_run`): ``release()`` it, or use it as a
    context manager."""

    def __init__(self, folder: Path, lock: FileLock):
        self.folder, self._lock = folder, lock

    @property
    def held(self) -> bool:
        """Whether this lock is still held."""
        return self._lock.held

    def release(self) -> None:
        """Let the run be trained by others again; safe to call twice."""
        self._lock.release()

    def __enter__(self) -> RunLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def __del__(self) -> None:  # a lock its owner forgot must not outlive the object
        with contextlib.suppress(Exception):
            self.release()


def lock_run(folder: str | os.PathLike) -> RunLock:
    """Lock a run folder (created if needed) while it trains; RunError if it is already locked.

    The lock is an ``flock`` on ``folder/.lock``, so a killed holder leaves no stale lock and a
    second lock in the same process (another tab of the lab) conflicts too. Taking it also
    removes what an interrupted save of the run left behind.
    """
    folder = Path(folder)
    check_id(folder.name, "run id (the run folder's name)", error=RunError)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK
    held = None
    # A holder writes its pid right after taking the lock; a locked file still empty is that
    # instant (or an is_locked probe), so look again a few times before calling the run busy.
    for attempt in range(20):
        held = FileLock.acquire(path)
        if held is not None or read_holder(path):
            break
        time.sleep(0.005 * (attempt + 1))
    if held is None:
        pid = read_holder(path)
        if pid == str(os.getpid()):
            who = "in this process (another tab or thread)"
        elif pid.isdigit():
            who = f"by another process (pid {pid})"
        else:
            who = "by another process"
        stale = "" if fsio.fcntl else f" (or delete {path} if nothing is training it)"
        raise RunError(
            f"Run '{folder.name}' is already being trained {who}; wait for it to finish or stop "
            f"it before continuing it{stale}."
        )
    held.write(f"{os.getpid()}\n")
    clean_leftovers(folder)
    return RunLock(folder, held)


def is_locked(folder: str | os.PathLike) -> bool:
    """Whether a run folder is locked for training right now (by any process, this one too)."""
    return is_held(Path(folder) / LOCK)
