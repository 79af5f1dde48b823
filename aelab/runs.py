"""Saved runs: ``runs/<id>/`` holds safetensors weights and JSON metadata, written atomically."""

from __future__ import annotations

import json
import os
import re
import secrets
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from . import __version__
from .errors import RunError
from .params import Params, TrainConfig, validate

RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
WEIGHTS = "weights.safetensors"
OPTIMIZER = "optimizer.safetensors"
META = "run.json"


def runs_root(runs_dir: str | os.PathLike | None = None) -> Path:
    """The folder runs live in: the argument, ``AELAB_RUNS_DIR``, or ./runs."""
    return Path(runs_dir or os.environ.get("AELAB_RUNS_DIR") or "runs")


def new_run_id(model_id: str) -> str:
    """A fresh, sortable, filesystem-safe run id."""
    safe = re.sub(r"[^A-Za-z0-9_-]", "-", model_id)[:40] or "model"
    return f"{safe}-{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(2)}"


def _atomic_write(path: Path, write: Any) -> None:
    """Write through a temporary file in the same folder, then rename over the target."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: Path, obj: Any) -> None:
    """Atomically write ``obj`` as indented JSON."""

    def write(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(obj, fh, indent=2, allow_nan=False)
            fh.write("\n")

    _atomic_write(path, write)


def _tensors(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    # safetensors refuses shared or non-contiguous storage, so save independent copies.
    return {k: v.detach().to("cpu").contiguous().clone() for k, v in state.items()}


def optimizer_tensors(
    optimizers: dict[str, torch.optim.Optimizer],
) -> tuple[dict[str, torch.Tensor], dict]:
    """Split optimizer state into tensors (for safetensors) and plain JSON."""
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


def save_run(
    run_id: str,
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
) -> Path:
    """Write a run's weights, optimizer state and metadata; every file appears atomically."""
    if not RUN_ID.match(run_id):
        raise RunError(
            f"'{run_id}' is not a valid run id (letters, digits, '.', '_' and '-' only)."
        )
    folder = runs_root(runs_dir) / run_id
    folder.mkdir(parents=True, exist_ok=True)
    weights = _tensors(model.state_dict())
    _atomic_write(
        folder / WEIGHTS, lambda tmp: save_file(weights, tmp, metadata={"model": spec.id})
    )
    opt_tensors, opt_meta = optimizer_tensors(optimizers)
    _atomic_write(folder / OPTIMIZER, lambda tmp: save_file(opt_tensors, tmp))
    meta = {
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
        "history": history,
        "optimizer": opt_meta,
    }
    write_json(folder / META, meta)
    return folder


@dataclass
class Run:
    """A saved run, loaded back: its model, settings and history."""

    run_id: str
    path: Path
    spec: Any
    params: Params
    config: TrainConfig
    model: Any
    history: list[dict[str, Any]]
    data_meta: dict[str, Any]
    status: str
    optimizer_state: dict[str, Any] | None = field(default=None, repr=False)

    @property
    def final_losses(self) -> dict[str, float]:
        """The last epoch's training losses."""
        return self.history[-1]["losses"] if self.history else {}

    @property
    def final_val_losses(self) -> dict[str, float]:
        """The last epoch's validation losses."""
        return self.history[-1]["val_losses"] if self.history else {}


def resolve(run: str | os.PathLike, runs_dir: str | os.PathLike | None = None) -> Path:
    """A run id inside the runs folder, or a path to a run folder."""
    path = Path(run)
    if (path / META).is_file():
        return path
    name = str(run)
    if RUN_ID.match(name):
        candidate = runs_root(runs_dir) / name
        if (candidate / META).is_file():
            return candidate
    raise RunError(
        f"No saved run '{run}' in {runs_root(runs_dir)}; `aelab runs` lists the saved runs."
    )


def load_run(
    run: str | os.PathLike, runs_dir: str | os.PathLike | None = None, device: str = "cpu"
) -> Run:
    """Load a run's model and metadata without unpickling anything."""
    from .plugins import get_model

    folder = resolve(run, runs_dir)
    try:
        meta = json.loads((folder / META).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise RunError(f"{folder / META} is not readable JSON ({exc}).") from None
    for key in ("model", "params", "train", "data", "sample_shape"):
        if key not in meta:
            raise RunError(f"{folder / META} lacks the '{key}' entry; it is not an aelab run.")
    spec = get_model(meta["model"])
    params = spec.validate_params(meta["params"])
    config = validate(TrainConfig, meta["train"], "training settings")
    kind = meta["data"].get("kind", "image" if len(meta["sample_shape"]) == 3 else "flat")
    model = spec.build(params, tuple(meta["sample_shape"]), kind)
    try:
        state = load_file(str(folder / WEIGHTS), device=device)
        model.load_state_dict(state)
    except (OSError, SafetensorError, RuntimeError) as exc:
        reason = str(exc).strip().splitlines()[0]
        raise RunError(
            f"{folder / WEIGHTS} cannot be loaded into model '{spec.id}' ({reason})."
        ) from None
    model.eval()
    opt_state = None
    if (folder / OPTIMIZER).is_file() and meta.get("optimizer"):
        try:
            opt_state = {"tensors": load_file(str(folder / OPTIMIZER)), "meta": meta["optimizer"]}
        except (OSError, SafetensorError):
            opt_state = None  # weights alone still let the run be evaluated and trained further
    return Run(
        run_id=meta.get("run_id", folder.name),
        path=folder,
        spec=spec,
        params=params,
        config=config,
        model=model,
        history=meta.get("history", []),
        data_meta=meta["data"],
        status=meta.get("status", "completed"),
        optimizer_state=opt_state,
    )


def list_runs(runs_dir: str | os.PathLike | None = None) -> list[dict[str, Any]]:
    """Summaries of every saved run, newest first."""
    root = runs_root(runs_dir)
    out = []
    if not root.is_dir():
        return out
    for meta_path in root.glob(f"*/{META}"):
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            continue
        hist = meta.get("history") or []
        out.append(
            {
                "run_id": meta.get("run_id", meta_path.parent.name),
                "model": meta.get("model"),
                "data": (meta.get("data") or {}).get("name"),
                "epochs": hist[-1]["epoch"] if hist else 0,
                "status": meta.get("status"),
                "losses": hist[-1]["losses"] if hist else {},
                "val_losses": hist[-1]["val_losses"] if hist else {},
                "saved_at": meta.get("saved_at"),
                "path": str(meta_path.parent),
            }
        )
    out.sort(key=lambda r: r.get("saved_at") or "", reverse=True)
    return out
