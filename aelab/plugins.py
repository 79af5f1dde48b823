"""The pluggy host: discovers plugins, isolates failures, and builds the model and dataset registries."""

from __future__ import annotations

import importlib.util
import os
import re
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
DEFAULT_PLUGINS = (
    "aelab.builtin_datasets",
    "aelab.builtin_readers",
    "aelab.apps.generate",
    "aelab.apps.traverse",
    "aelab.apps.encode",
    "aelab.apps.anomaly",
    "aelab.apps.denoise",
    "aelab.apps.inpaint",
    "aelab.apps.search",
    "aelab.apps.compress",
    "aelab.tracking.tensorboard",
    "aelab.tracking.mlflow",
)
# The distribution whose entry points are the built-in models (``aelab_plugins.*``): they keep
# their ids and plugin names whatever else is installed.
BUILTIN_DISTRIBUTION = "aelab"

pm = pluggy.PluginManager("aelab")
pm.add_hookspecs(hookspecs)

_loaded = False
_plugins_dir: str | None = None
failures: list[dict[str, str]] = []
_dists: dict[str, str] = {}  # plugin name -> version
_builtin: set[str] = set()  # names of the plugins that ship with aelab
_listeners: list[Callable[[str], None]] = []  # told each load warning when the registry builds


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
    applications: dict[str, Any] = field(default_factory=dict)
    readers: dict[str, Any] = field(default_factory=dict)  # aelab.readers.Reader by name
    trackers: dict[str, Any] = field(default_factory=dict)  # aelab.tracking.Tracker by name


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


def _refuse(name: str, stage: str, message: str, kind: str) -> None:
    """Record a registration the host turned down (a taken id or name, an incomplete schema)."""
    failures.append({"plugin": name, "stage": stage, "error": message, "kind": kind})


def _canonical(dist_name: str) -> str:
    return re.sub(r"[-_.]+", "-", dist_name).lower()


def _dist_of(ep: metadata.EntryPoint, seen: dict[int, tuple[str, str]]) -> tuple[str, str] | None:
    """The name and version of the distribution declaring ``ep`` (None when unknown).

    Each of ``Distribution.name`` and ``.version`` parses the whole METADATA file again (a few
    ms for aelab's, which carries the README), so each distribution is read once per load."""
    dist = getattr(ep, "dist", None)
    if dist is None:
        return None
    key = id(dist)
    if key not in seen:
        meta = dist.metadata
        seen[key] = (meta["Name"] or "", meta["Version"] or "")
    return seen[key]


def _is_builtin_entry_point(
    ep: metadata.EntryPoint, seen: dict[int, tuple[str, str]] | None = None
) -> bool:
    """Whether an entry point is one of aelab's own (declared by the aelab distribution)."""
    dist = _dist_of(ep, {} if seen is None else seen)
    return dist is not None and _canonical(dist[0]) == BUILTIN_DISTRIBUTION


def is_builtin(plugin: str) -> bool:
    """Whether the plugin of this name ships with aelab (its models keep their ids)."""
    load_plugins()
    return plugin in _builtin


def _register(
    module: Any, name: str, version: str | None = None, builtin: bool = False, origin: str = ""
) -> None:
    if pm.is_registered(module):
        return
    holder = pm.get_plugin(name)
    if holder is not None:
        # Two different modules under one plugin name: the first keeps it (built-ins load
        # first), and the second is refused out loud rather than silently dropped.
        whose = "aelab's built-in plugin" if name in _builtin else "an earlier plugin"
        label = f"{name} ({origin})" if origin else name
        _refuse(
            label,
            "register",
            f"plugin '{label}' was refused: the plugin name '{name}' is taken by {whose} "
            f"'{name}'; rename its entry point.",
            "name",
        )
        return
    try:
        pm.register(module, name=name)
    except Exception as exc:  # a plugin with malformed hooks must not take the host down
        _fail(name, exc, "register")
        return
    if version:
        _dists[name] = version
    if builtin:
        _builtin.add(name)


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
            _register(importlib.import_module(modname), modname, builtin=True)
        except Exception as exc:
            _fail(modname, exc, "import")
    # aelab's own entry points first, whatever order the environment lists them in: the
    # built-ins then hold their plugin names and model ids before any third party asks.
    seen: dict[int, tuple[str, str]] = {}
    eps = sorted(
        metadata.entry_points(group=ENTRY_POINT_GROUP),
        key=lambda ep: not _is_builtin_entry_point(ep, seen),
    )
    for ep in eps:
        if allowed is not None and ep.name not in allowed:
            continue
        try:
            module = ep.load()
        except Exception as exc:
            _fail(ep.name, exc, "import")
            continue
        dist = _dist_of(ep, seen)
        version = dist[1] if dist is not None else None
        origin = f"distribution {dist[0]}" if dist is not None else ep.value
        _register(module, ep.name, version, _is_builtin_entry_point(ep, seen), origin)
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
    _builtin.clear()
    _loaded = False
    _registry = None


def invalidate() -> None:
    """Rebuild the registries on next use (after ``pm.register`` of a test plugin)."""
    global _registry
    _registry = None


def _call_each(hook_name: str, register_for: Callable[[str], Callable]) -> None:
    """Call one hook plugin by plugin, built-ins first, so one failing implementation is
    isolated and aelab's own registrations come before any third party's."""
    hook = getattr(pm.hook, hook_name)
    impls = [(pm.get_name(impl.plugin) or repr(impl.plugin), impl) for impl in hook.get_hookimpls()]
    for name, impl in sorted(impls, key=lambda pair: pair[0] not in _builtin):
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
    from .params import schema_problems
    from .specs import ModelSpec  # torch-free (aelab.models, which re-exports it, is not)

    reg = Registry()
    # The register_* hooks run again below, so their old failures go (imports' stay).
    failures[:] = [f for f in failures if not f["stage"].startswith("register_")]

    def model_register(plugin: str) -> Callable:
        def register(spec: Any) -> None:
            if not isinstance(spec, ModelSpec):
                raise PluginError(f"register() got {type(spec).__name__}, expected a ModelSpec")
            # aelab's own schemas are checked by its test suite (tests/test_plugins.py), not at
            # every start: that is 21 JSON schemas, about 25 ms of each CLI call and lab start.
            problems = [] if plugin in _builtin else schema_problems(spec.params)
            if problems:
                _refuse(
                    plugin,
                    "register_models",
                    f"model '{spec.id}' of plugin '{plugin}' was refused: "
                    + "; ".join(problems)
                    + ".",
                    "schema",
                )
                return
            if spec.id in reg.models:
                holder = reg.models[spec.id].plugin
                _refuse(plugin, "register_models", _duplicate(spec.id, holder, plugin), "duplicate")
                return
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

    def application_register(plugin: str) -> Callable:
        from .applications import RESERVED_IDS, ApplicationSpec, AppParams

        def register(spec: Any) -> None:
            if not isinstance(spec, ApplicationSpec):
                raise PluginError(
                    f"register() got {type(spec).__name__}, expected an ApplicationSpec"
                )
            problems = [] if plugin in _builtin else schema_problems(spec.params, AppParams)
            if spec.id in RESERVED_IDS or spec.id in reg.applications:
                holder = reg.applications[spec.id].plugin if spec.id in reg.applications else ""
                problems.append(
                    f"its id is taken by {'plugin ' + repr(holder) if holder else 'aelab itself'}"
                )
            if problems:
                _refuse(
                    plugin,
                    "register_applications",
                    f"application '{spec.id}' of plugin '{plugin}' was refused: "
                    + "; ".join(problems)
                    + ".",
                    "schema",
                )
                return
            spec.plugin = plugin
            reg.applications[spec.id] = spec

        return register

    _call_each("register_models", model_register)
    _call_each("register_datasets", dataset_register)
    _call_each("register_applications", application_register)
    from .readers import registrar  # late import: readers imports this module

    _call_each("register_readers", registrar(reg.readers))
    from . import tracking  # late import, like readers

    _call_each("register_trackers", tracking.registrar(reg.trackers))
    _registry = reg
    if _listeners:
        for line in _warning_lines():
            for listener in list(_listeners):
                listener(line)
    return reg


def _duplicate(model_id: str, holder: str, plugin: str) -> str:
    """The sentence for a model id a second plugin asked for: who keeps it, who is refused."""
    if holder == plugin:
        return (
            f"model id '{model_id}' is registered twice by plugin '{plugin}'; the second "
            "registration was refused."
        )
    if holder in _builtin and plugin not in _builtin:
        keeps = f"the built-in '{holder}' keeps it"
    else:
        keeps = f"'{holder}', which registered first, keeps it"
    return (
        f"model id '{model_id}' is registered by both plugin '{holder}' and plugin '{plugin}'; "
        f"{keeps} and the model of '{plugin}' was refused (give it another id)."
    )


def duplicate_errors() -> list[str]:
    """Messages for model ids claimed by two plugins (recorded as failures)."""
    registry()
    return [f["error"] for f in failures if f.get("kind") == "duplicate"]


def _warning_lines() -> list[str]:
    lines = []
    for f in failures:
        if f.get("kind"):  # a refusal: already a sentence naming the plugin
            lines.append(f["error"])
        elif f["stage"] == "import":
            lines.append(f"plugin '{f['plugin']}' failed to load and was skipped: {f['error']}")
        else:
            lines.append(f"plugin '{f['plugin']}' failed in {f['stage']}: {f['error']}")
    return lines


def load_warnings() -> list[str]:
    """One line per plugin problem: failed imports, failing hooks, and registrations the host
    refused (a taken model id or plugin name, a parameter schema without bounds or
    descriptions). Loads the plugins if that has not happened yet; the CLI prints these on
    stderr and the lab shows them."""
    registry()
    return _warning_lines()


def report_load_warnings(report: Callable[[str], None]) -> Callable[[], None]:
    """Call ``report(line)`` with each load warning whenever the plugins are (re)loaded from now
    on, so a command that never loads plugins prints nothing; returns the function that stops it."""
    _listeners.append(report)

    def stop() -> None:
        if report in _listeners:
            _listeners.remove(report)

    return stop


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


def get_applications() -> dict[str, Any]:
    """Every registered application spec by id."""
    return registry().applications


def get_application(app_id: str) -> Any:
    """The spec of one application, or a PluginError naming the known ids."""
    apps = get_applications()
    if app_id not in apps:
        known = ", ".join(sorted(apps)) or "none"
        raise PluginError(f"Unknown application '{app_id}'; registered ones are: {known}.")
    return apps[app_id]


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
            "applications": sorted(a for a, e in reg.applications.items() if e.plugin == name),
        }
        errs = [f["error"] for f in failures if f["plugin"] == name]
        if errs:
            info["error"] = " ".join(errs) if len(errs) > 1 else errs[0]
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
