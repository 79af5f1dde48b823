"""What a model plugin registers, without torch: the ModelSpec and the names it is checked against.

Listing the models (``aelab models``, ``aelab --help``, the lab's first page) needs a model's
id, texts, parameter schema and capabilities, never its network. This module holds exactly that
and imports neither torch nor the network code: a spec may name its factory by import path
(``"package.module:Class"``), and the module is imported on the first build. ``aelab.models``
re-exports everything here, so ``from aelab.models import ModelSpec`` keeps working.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .errors import ParamsError, PluginError
from .params import Params, validate

if TYPE_CHECKING:  # the Model base class lives with torch
    from .models import Model

CAPABILITIES = ("encode", "decode", "reconstruct", "sample")
# What a model's code is: the lab and the PCA comparison describe it accordingly.
CODE_KINDS = ("continuous", "sparse", "binary", "discrete")
METRICS = "metrics"  # the key under which a step returns metrics that are not losses

_RESOLVE_LOCK = threading.Lock()


def _ordered(capabilities: Iterable[str]) -> list[str]:
    """Capabilities in the order of CAPABILITIES (unknown names are kept, last, for the kit to
    report)."""
    caps = list(dict.fromkeys(capabilities))
    return [c for c in CAPABILITIES if c in caps] + [c for c in caps if c not in CAPABILITIES]


def resolve(path: str) -> Any:
    """The object an import path names: ``"package.module:attr"`` (``attr`` may be dotted)."""
    module_name, sep, attr = path.partition(":")
    if not sep or not module_name or not attr:
        raise PluginError(
            f"factory {path!r} is not an import path of the form 'package.module:Class'."
        )
    obj: Any = importlib.import_module(module_name)
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise PluginError(f"factory {path!r}: {module_name} has no {attr!r}.") from None
    return obj


@dataclass
class ModelSpec:
    """What a plugin registers: a model's identity, its hyperparameters and how it builds itself.

    ``factory`` is the callable ``factory(params, sample_shape)`` returning the Model (usually
    the Model class), or its import path ``"package.module:Class"``, imported on the first build
    so that listing models never imports the network (nor torch). ``capabilities`` are the verbs
    the built model supports; when omitted they are read from the factory's class attribute
    ``capabilities``, so a spec whose factory is an import path declares them here.
    """

    id: str
    name: str
    description: str
    params: type[Params]
    factory: Callable[[Params, tuple[int, ...]], Model] | str
    accepts: tuple[str, ...] = ("flat", "image")
    help: str = ""  # longer markdown: how it works, its loss, what it is good for
    plugin: str = field(default="", compare=False)
    capabilities: Iterable[str] | None = None

    def __post_init__(self) -> None:
        if self.capabilities is None:
            if isinstance(self.factory, str):
                raise PluginError(
                    f"model '{self.id}' names its factory by import path ({self.factory!r}), so "
                    "its spec must declare capabilities=(...) itself (the verbs the model "
                    f"supports, among {CAPABILITIES})."
                )
            self.capabilities = getattr(self.factory, "capabilities", frozenset())
        elif isinstance(self.capabilities, str):
            self.capabilities = [self.capabilities]
        self.capabilities = _ordered(self.capabilities)

    @property
    def lazy(self) -> bool:
        """Whether the factory is an import path not imported yet."""
        return isinstance(self.factory, str) and "_factory" not in self.__dict__

    def resolve_factory(self) -> Callable[[Params, tuple[int, ...]], Model]:
        """The factory itself, importing its module the first time when it is an import path."""
        if not isinstance(self.factory, str):
            return self.factory
        found = self.__dict__.get("_factory")
        if found is None:
            with _RESOLVE_LOCK:  # two lab tabs building at once import the module once
                found = self.__dict__.get("_factory")
                if found is None:
                    found = resolve(self.factory)
                    if not callable(found):
                        raise PluginError(
                            f"factory {self.factory!r} of model '{self.id}' is a "
                            f"{type(found).__name__}, not a callable."
                        )
                    self.__dict__["_factory"] = found
        return found

    def validate_params(self, values: dict[str, Any] | Params | None = None) -> Params:
        """Validate hyperparameters against this model's schema."""
        if isinstance(values, self.params):
            return values
        if isinstance(values, Params):
            values = values.model_dump()
        return validate(self.params, dict(values or {}), f"parameters for {self.id}")

    def build(
        self, params: dict[str, Any] | Params | None, sample_shape: tuple[int, ...], kind: str
    ) -> Model:
        """Validate params, check the data kind, and build the model for this data shape."""
        if kind not in self.accepts:
            wanted = " or ".join(self.accepts)
            raise ParamsError(
                f"Model '{self.id}' needs {wanted} data, but this dataset is {kind} data."
            )
        params = self.validate_params(params)
        return self.resolve_factory()(params, tuple(sample_shape))

    def schema(self) -> dict[str, Any]:
        """JSON schema of the hyperparameters (what the UI and the CLI are built from)."""
        return self.params.model_json_schema()

    def to_json(self) -> dict[str, Any]:
        """Description used by ``aelab models --json``."""
        return {
            "id": self.id,
            "name": self.name,
            "plugin": self.plugin,
            "description": self.description,
            "accepts": list(self.accepts),
            "capabilities": list(self.capabilities),
            "params": self.schema(),
        }
