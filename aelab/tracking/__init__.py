"""Experiment trackers: training callbacks that log to TensorBoard, MLflow or what a plugin adds.

A plugin adds a tracker by implementing ``register_trackers(register)`` and calling
``register(Tracker(...))``; aelab's own (:mod:`aelab.tracking.tensorboard`,
:mod:`aelab.tracking.mlflow`) are default plugins registered the same way, one file each.
:func:`make_trackers` turns the names the user chose (``aelab train --log NAME``, the lab's
"Log to" setting) into callbacks. The packages a tracker needs are imported only when it is
asked for, so ``import aelab`` never imports TensorBoard or MLflow.
"""

from __future__ import annotations

import importlib
import inspect
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from .. import plugins
from ..errors import AelabError, ParamsError, PluginError

_NAME = re.compile(r"^[a-z][a-z0-9_-]*$")


@dataclass
class Tracker:
    """An experiment tracker: ``make(**options)`` returns the training callback that logs.

    ``requires`` names the modules it imports (checked, by importing them, when the tracker is
    asked for); ``install`` says how to get them, for the sentence shown when one is missing.
    ``make``'s keyword arguments are the tracker's options (see :func:`make_trackers`).
    """

    name: str
    description: str  # one line: where it logs and what
    make: Callable[..., Any]
    requires: tuple[str, ...] = ()
    install: str = ""  # e.g. "pip install 'aelab[tensorboard]'"
    label: str = ""  # how the lab names it; the name when empty
    plugin: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        if isinstance(self.requires, str):
            self.requires = (self.requires,)
        self.requires = tuple(self.requires)
        if not self.label:
            self.label = self.name

    def missing(self) -> str | None:
        """The first module it needs that cannot be imported, or None when all can."""
        for module in self.requires:
            try:
                importlib.import_module(module)
            except ImportError:
                return module
        return None

    def to_json(self) -> dict[str, Any]:
        """What the registry says about it."""
        return {
            "name": self.name,
            "label": self.label,
            "description": self.description,
            "requires": list(self.requires),
            "install": self.install,
            "plugin": self.plugin,
        }


def _problems(tracker: Tracker, taken: dict[str, Tracker]) -> list[str]:
    problems = []
    if not isinstance(tracker.name, str) or not _NAME.match(tracker.name):
        problems.append(
            "its name must be lower-case letters, digits, '-' or '_', starting with a letter"
        )
    elif tracker.name in taken:
        problems.append(f"its name is taken by plugin '{taken[tracker.name].plugin}'")
    text = str(tracker.description or "").strip()
    if not text or "\n" in text:
        problems.append("it needs a one-line description")
    if not callable(tracker.make):
        problems.append("make must be a function make(**options) returning a callback")
    if not all(isinstance(m, str) and m for m in tracker.requires):
        problems.append("requires must name modules, like ('tensorboard',)")
    return problems


def registrar(trackers: dict[str, Tracker]) -> Callable[[str], Callable]:
    """The ``register`` callback the plugin host hands each plugin's ``register_trackers``;
    a tracker that breaks the contract is refused with one sentence naming it and its plugin."""

    def for_plugin(plugin: str) -> Callable:
        def register(tracker: Any) -> None:
            if not isinstance(tracker, Tracker):
                raise PluginError(
                    f"register() got {type(tracker).__name__}, expected an aelab.tracking.Tracker"
                )
            problems = _problems(tracker, trackers)
            if problems:
                plugins._refuse(
                    plugin,
                    "register_trackers",
                    f"tracker '{tracker.name}' of plugin '{plugin}' was refused: "
                    + "; ".join(problems)
                    + ".",
                    "tracker",
                )
                return
            tracker.plugin = plugin
            trackers[tracker.name] = tracker

        return register

    return for_plugin


def get_trackers() -> dict[str, Tracker]:
    """Every registered tracker by name, aelab's own first."""
    return plugins.registry().trackers


def tracker_names() -> list[str]:
    """The names ``--log`` takes."""
    return list(get_trackers())


def split_names(values: Iterable[str] | str | None) -> list[str]:
    """Tracker names from repeated and/or comma-separated values, each once, in order."""
    if values is None:
        return []
    if isinstance(values, str):
        values = [values]
    names = [n.strip().lower() for v in values for n in str(v).split(",")]
    return list(dict.fromkeys(n for n in names if n))


def _takes(make: Callable[..., Any]) -> tuple[set[str], bool]:
    """The keyword arguments ``make`` takes, and whether it takes any (``**options``)."""
    try:
        params = inspect.signature(make).parameters.values()
    except (TypeError, ValueError):  # a builtin without a signature: let it sort them out
        return set(), True
    names = {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    return names, any(p.kind is p.VAR_KEYWORD for p in params)


def make_trackers(names: Iterable[str] | str | None, **options: Any) -> list[Any]:
    """The callbacks of the named trackers (``"tensorboard"``, ``["tensorboard", "mlflow"]``,
    ``"tensorboard,mlflow"``). Each option goes to the trackers whose ``make`` takes it
    (``log_dir`` to TensorBoard, ``tracking_uri`` and ``experiment`` to MLflow); a name that is
    not registered, a tracker whose package is not installed, or an option none of them takes
    is a ParamsError of one sentence."""
    chosen = split_names(names)
    if not chosen:
        return []
    trackers = get_trackers()
    for name in chosen:
        if name not in trackers:
            known = ", ".join(trackers) or "none"
            raise ParamsError(f"Unknown tracker '{name}'; the registered trackers are: {known}.")
    for name in chosen:
        tracker = trackers[name]
        module = tracker.missing()
        if module is not None:
            how = tracker.install or f"pip install {module}"
            raise ParamsError(f"{tracker.label} logging needs the {module} package: {how}.")
    takes = {name: _takes(trackers[name].make) for name in chosen}
    for key in options:
        if not any(key in named or anything for named, anything in takes.values()):
            raise ParamsError(f"No tracker among {', '.join(chosen)} takes the option '{key}'.")
    out = []
    for name in chosen:
        named, anything = takes[name]
        mine = {k: v for k, v in options.items() if anything or k in named}
        try:
            out.append(trackers[name].make(**mine))
        except AelabError:
            raise
        except Exception as exc:  # a third-party tracker's bug is one sentence, not a traceback
            raise PluginError(
                f"Tracker '{name}' of plugin '{trackers[name].plugin}' could not be set up "
                f"({type(exc).__name__}: {exc})."
            ) from exc
    return out


# -- what the built-in trackers share ----------------------------------------------------------
def _plain(value: Any) -> str | int | float | bool:
    """A setting as a number, a flag or a string (lists and None as JSON)."""
    if isinstance(value, (bool, int, float, str)):
        return value
    return json.dumps(value, default=str)


def hyperparameters(trainer: Any) -> dict[str, str | int | float | bool]:
    """A training's settings, flat: ``model``, then ``params.KEY`` for each of the model's
    hyperparameters and ``train.KEY`` for each training setting."""
    out: dict[str, Any] = {"model": trainer.spec.id}
    out.update(
        {f"params.{k}": _plain(v) for k, v in trainer.params.model_dump(mode="json").items()}
    )
    out.update({f"train.{k}": _plain(v) for k, v in trainer.config.model_dump(mode="json").items()})
    return out


def epoch_scalars(event: Any) -> dict[str, float]:
    """An Epoch event's figures by tag: ``loss/TERM``, ``val_loss/TERM``, ``metric/NAME``,
    ``val_metric/NAME``, ``samples_per_s`` and ``epoch_samples_per_s``."""
    out: dict[str, float] = {}
    for prefix, values in (
        ("loss", event.losses),
        ("val_loss", event.val_losses),
        ("metric", event.metrics),
        ("val_metric", event.val_metrics),
    ):
        out.update({f"{prefix}/{k}": float(v) for k, v in (values or {}).items()})
    out["samples_per_s"] = float(event.samples_per_s)  # over the training so far
    own = getattr(event, "epoch_samples_per_s", 0.0)  # this epoch's alone, where reported
    if own:
        out["epoch_samples_per_s"] = float(own)
    return out
