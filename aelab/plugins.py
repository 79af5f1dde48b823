"""The pluggy host: discovers plugins, isolates failures, and builds the model and dataset registries."""

from __future__ import annotations

import importlib.util
import os
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import pluggy

from . import hookspecs
from .errors import PluginError

ENTRY_POINT_GROUP = "aelab"
# aelab's own defaults are registered like any other plugin.
DEFAULT_PLUGINS = ("aelab.builtin_datasets",)

pm = pluggy.PluginManager("aelab")
pm.add_hookspecs(hookspecs)

_loaded = False
_plugins_dir: str | None = None
failures: list[dict[str, str]] = []
_dists: dict[str, str] = {}  # plugin name -> version


@dataclass
class DatasetEntry:
    """A named dataset a plugin registered."""

    name: str
    loader: Callable[[], Any]
    description: str
    plugin: str


@dataclass
class Registry:
    """Models and datasets collected from every loaded plugin."""

    models: dict[str, Any] = field(default_factory=dict)
    datasets: dict[str, DatasetEntry] = field(default_factory=dict)


_registry: Registry | None = None


def _reason(exc: BaseException) -> str:
    """One line saying why a plugin failed."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _allowed() -> set[str] | None:
    raw = os.environ.get("AELAB_LOAD_PLUGINS")
    if raw is None:
        return None
    return {name.strip() for name in raw.split(",") if name.strip()}


def _fail(name: str, exc: BaseException, stage: str) -> None:
    failures.append({"plugin": name, "stage": stage, "error": _reason(exc)})
    if os.environ.get("AELAB_DEBUG"):
        traceback.print_exception(exc, file=sys.stderr)


def _register(module: Any, name: str, version: str | None = None) -> None:
    if pm.get_plugin(name) is not None or pm.is_registered(module):
        return
    try:
        pm.register(module, name=name)
    except Exception as exc:  # a plugin with malformed hooks must not take the host down
        _fail(name, exc, "register")
        return
    if version:
        _dists[name] = version


def set_plugins_dir(path: str | os.PathLike | None) -> None:
    """Load loose ``*.py`` plugins from this folder (overrides ``AELAB_PLUGINS_DIR``)."""
    global _plugins_dir
    _plugins_dir = str(path) if path else None
    reset()


def load_plugins() -> None:
    """Discover plugins once: aelab's defaults, the ``aelab`` entry points, and a drop-in folder."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    allowed = _allowed()
    for modname in DEFAULT_PLUGINS:
        try:
            _register(importlib.import_module(modname), modname)
        except Exception as exc:
            _fail(modname, exc, "import")
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        if allowed is not None and ep.name not in allowed:
            continue
        try:
            module = ep.load()
        except Exception as exc:
            _fail(ep.name, exc, "import")
            continue
        version = ep.dist.version if ep.dist is not None else None
        _register(module, ep.name, version)
    folder = _plugins_dir or os.environ.get("AELAB_PLUGINS_DIR")
    if folder:
        _load_dir(Path(folder), allowed)


def _load_dir(folder: Path, allowed: set[str] | None) -> None:
    if not folder.is_dir():
        failures.append(
            {"plugin": str(folder), "stage": "import", "error": "plugins folder does not exist"}
        )
        return
    for path in sorted(folder.glob("*.py")):
        name = path.stem
        if name.startswith("_") or (allowed is not None and name not in allowed):
            continue
        modname = f"aelab_dropin_{name}"
        try:
            spec = importlib.util.spec_from_file_location(modname, path)
            module = importlib.util.module_from_spec(spec)
            sys.modules[modname] = module
            spec.loader.exec_module(module)
        except Exception as exc:
            sys.modules.pop(modname, None)
            _fail(name, exc, "import")
            continue
        _register(module, name)


def reset() -> None:
    """Forget loaded plugins and registries (tests and ``set_plugins_dir`` use this)."""
    global _loaded, _registry
    for name, _plugin in list(pm.list_name_plugin()):
        pm.unregister(name=name)
    failures.clear()
    _dists.clear()
    _loaded = False
    _registry = None


def invalidate() -> None:
    """Rebuild the registries on next use (after ``pm.register`` of a test plugin)."""
    global _registry
    _registry = None


def _call_each(hook_name: str, register_for: Callable[[str], Callable]) -> None:
    """Call one hook plugin by plugin, so one failing implementation is isolated."""
    hook = getattr(pm.hook, hook_name)
    for impl in hook.get_hookimpls():
        name = pm.get_name(impl.plugin) or repr(impl.plugin)
        try:
            impl.function(register=register_for(name))
        except Exception as exc:
            _fail(name, exc, hook_name)


def registry() -> Registry:
    """The models and datasets of every plugin that loaded; built once, then cached."""
    global _registry
    if _registry is not None:
        return _registry
    load_plugins()
    from .models import ModelSpec  # late import: models imports torch

    reg = Registry()
    failures[:] = [
        f for f in failures if f["stage"] not in ("register_models", "register_datasets")
    ]

    def model_register(plugin: str) -> Callable:
        def register(spec: Any) -> None:
            if not isinstance(spec, ModelSpec):
                raise PluginError(f"register() got {type(spec).__name__}, expected a ModelSpec")
            if spec.id in reg.models:
                other = reg.models[spec.id].plugin
                raise PluginError(
                    f"model id '{spec.id}' is registered by both plugin '{other}' and plugin '{plugin}'"
                )
            spec.plugin = plugin
            reg.models[spec.id] = spec

        return register

    def dataset_register(plugin: str) -> Callable:
        def register(name: str, loader: Callable, description: str = "") -> None:
            if name in reg.datasets:
                other = reg.datasets[name].plugin
                raise PluginError(
                    f"dataset '{name}' is registered by both plugin '{other}' and plugin '{plugin}'"
                )
            reg.datasets[name] = DatasetEntry(name, loader, description, plugin)

        return register

    _call_each("register_models", model_register)
    _call_each("register_datasets", dataset_register)
    _registry = reg
    return reg


def duplicate_errors() -> list[str]:
    """Messages for model ids claimed by two plugins (recorded as failures)."""
    registry()
    return [f["error"] for f in failures if "registered by both" in f["error"]]


def get_models() -> dict[str, Any]:
    """Every registered model spec by id."""
    return registry().models


def get_model(model_id: str) -> Any:
    """The spec of one model, or a PluginError naming the known ids."""
    models = get_models()
    if model_id not in models:
        known = ", ".join(sorted(models)) or "none"
        raise PluginError(f"Unknown model '{model_id}'; registered models are: {known}.")
    return models[model_id]


def get_datasets() -> dict[str, DatasetEntry]:
    """Every registered built-in dataset by name."""
    return registry().datasets


def plugin_info() -> list[dict[str, Any]]:
    """Name, version, hooks and registered models of each plugin, plus load failures."""
    reg = registry()
    out = []
    for name, plugin in pm.list_name_plugin():
        hooks = sorted(h.name for h in pm.get_hookcallers(plugin) or [])
        info = {
            "name": name,
            "version": _dists.get(name),
            "hooks": hooks,
            "models": sorted(m for m, s in reg.models.items() if s.plugin == name),
            "datasets": sorted(d for d, e in reg.datasets.items() if e.plugin == name),
        }
        errs = [f["error"] for f in failures if f["plugin"] == name]
        if errs:
            info["error"] = errs[0]
        out.append(info)
    registered = {n for n, _ in pm.list_name_plugin()}
    for f in failures:
        if f["plugin"] not in registered:
            out.append(
                {
                    "name": f["plugin"],
                    "version": None,
                    "hooks": [],
                    "models": [],
                    "error": f["error"],
                }
            )
    return out
