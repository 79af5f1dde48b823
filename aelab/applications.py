"""The application seam: what a trained model is *used* for, registered like a model.

An application (anomaly detection, denoising, search, ...) declares which models it serves by
capability, never by model id, its parameters (a pydantic class with the same rules as a model's),
and brings its parts: the core function (plain Python, no UI), a CLI command, a lab panel (named
by import path, so only the lab imports gradio), and what it records in an ONNX export for the
runtime. Built-in applications are ordinary plugins of the ``register_applications`` hook; a
third-party package adds one the same way it adds a model. Nothing in the core branches on an
application's id.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict

from .errors import AelabError, ParamsError
from .params import validate

# Commands of aelab itself: an application may not take one of these ids.
RESERVED_IDS = frozenset(
    {
        "plugins",
        "models",
        "datasets",
        "applications",
        "train",
        "runs",
        "eval",
        "export",
        "infer",
        "ui",
    }
)


class AppParams(BaseModel):
    """Base of an application's parameters: unknown settings are refused, like a model's."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class ApplicationError(AelabError):
    """An application cannot serve this model or this input."""


@dataclass
class ApplicationSpec:
    """What a plugin registers: an application's identity, parameters and parts."""

    id: str  # also the CLI command and the lab endpoint: `aelab <id>`, `/<id>`
    name: str
    description: str  # one sentence
    params: type[AppParams]  # bounds, a title and a description on every field
    run: Callable[..., Any]  # the core: run(model, data, params, **context) -> a result
    # Model capabilities it needs, all of them (aelab.models.CAPABILITIES); ``serves`` may refine.
    needs: frozenset[str] = frozenset()
    # Optional finer check: None when the model can be served, else the reason in one sentence.
    serves: Callable[[Any], str | None] | None = None
    cli: Callable[[argparse._SubParsersAction], None] | None = None  # adds `aelab <id>`
    panel: str | None = None  # "module:function" building its lab panel (only the lab imports it)
    # What goes into an export for the runtime: export_record(model, data, run) -> dict, with
    # ``data`` the run's held-out data (None when it cannot be reloaded) and ``run`` the Run.
    export_record: Callable[..., dict[str, Any]] | None = None
    help: str = ""  # longer markdown: what it does, how to read its figures
    plugin: str = field(default="", compare=False)

    def reason_unavailable(self, model: Any) -> str | None:
        """Why this application cannot serve ``model`` (one sentence), or None when it can."""
        caps = set(getattr(model, "capabilities", ()))
        missing = sorted(self.needs - caps)
        if missing:
            return (
                f"{self.name} needs a model that can {' and '.join(missing)}; this one can "
                f"{', '.join(sorted(caps)) or 'do none of that'}."
            )
        return self.serves(model) if self.serves is not None else None

    def require(self, model: Any) -> None:
        """Raise ApplicationError when this application cannot serve ``model``."""
        reason = self.reason_unavailable(model)
        if reason:
            raise ApplicationError(reason)

    def validate_params(self, values: dict[str, Any] | BaseModel | None = None) -> BaseModel:
        """Validate the application's parameters against its schema."""
        if isinstance(values, self.params):
            return values
        if values is not None and not isinstance(values, dict):
            raise ParamsError(
                f"Parameters for {self.id} must be a JSON object of names and values, not "
                f"{type(values).__name__}."
            )
        return validate(self.params, dict(values or {}), f"parameters for {self.id}")

    def to_json(self) -> dict[str, Any]:
        """Description used by ``aelab applications --json``."""
        return {
            "id": self.id,
            "name": self.name,
            "plugin": self.plugin,
            "description": self.description,
            "needs": sorted(self.needs),
            "params": self.params.model_json_schema(),
            "cli": self.cli is not None,
            "panel": self.panel is not None,
            "export": self.export_record is not None,
        }
