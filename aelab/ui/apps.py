"""Application panels: one tab per registered application, built from the registry.

An application names its panel builder by import path (``ApplicationSpec.panel``,
"module:function"); the builder is called inside the application's tab as
``build(spec, session) -> PanelParts`` and wires its own events (with ``api_name=spec.id``).
The lab then keeps each panel's action button enabled only while the tab's model can serve the
application, with the reason shown when it cannot.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gradio as gr

from ..plugins import get_applications
from .session import LabSession

log = logging.getLogger("aelab.ui")
NO_MODEL = "Train a model or open a saved run first."
SECTION_INTRO = (
    "## 6 · Use the model\n"
    "What an autoencoder is for, applied to the model trained or opened above. A tab whose model "
    "cannot serve it says why and keeps its button disabled."
)


@dataclass
class PanelParts:
    """What the lab needs back from a panel builder: its action buttons and a note for why
    they are disabled."""

    buttons: list[gr.Button]
    note: gr.Markdown


def _builder(path: str) -> Callable[..., PanelParts]:
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


def build_tabs(session: gr.State) -> list[tuple[Any, PanelParts]]:
    """A tab per application that has a panel; call inside a ``gr.Tabs`` block."""
    out = []
    for spec in get_applications().values():
        if not spec.panel:
            continue
        with gr.Tab(spec.name, elem_id=f"tab-app-{spec.id}"):
            gr.Markdown(f"{spec.description}")
            if spec.help:
                with gr.Accordion("How it works and how to read it", open=False):
                    gr.Markdown(spec.help)
            try:
                parts = _builder(spec.panel)(spec, session)
            except Exception as exc:  # a broken third-party panel must not take the lab down
                log.exception("panel of application %s failed to build", spec.id)
                gr.Markdown(f"This panel could not be built ({type(exc).__name__}: {exc}).")
                continue
        out.append((spec, parts))
    return out


def availability(session: LabSession, panels: list[tuple[Any, PanelParts]]) -> list[Any]:
    """Updates enabling each panel's buttons when the tab's model can serve it, else saying why."""
    updates: list[Any] = []
    for spec, parts in panels:
        model = session.model
        reason = NO_MODEL if model is None else spec.reason_unavailable(model)
        updates.extend(gr.Button(interactive=reason is None) for _ in parts.buttons)
        updates.append(gr.Markdown(value=f"*{reason}*" if reason else ""))
    return updates


def outputs(panels: list[tuple[Any, PanelParts]]) -> list[Any]:
    """The components :func:`availability` updates, in its order."""
    out: list[Any] = []
    for _spec, parts in panels:
        out.extend(parts.buttons)
        out.append(parts.note)
    return out


# The lab's own view buttons and what they need from the tab's model (by capability, like an
# application's ``needs``); "run" means a saved run, "export" an export made in this tab.
VIEW_NEEDS = {
    "Map the codes": {"encode"},
    "Interpolate": {"encode", "decode"},
    "Draw samples": {"sample"},
    "Compare with PCA": {"reconstruct"},
    "Export ONNX": {"run"},
    "Run with onnxruntime": {"export"},
}
WHY = {
    "encode": "a model with an encoder (a GAN has none)",
    "decode": "a model with a decoder",
    "sample": "a model with a prior to sample from (a VAE, AAE or GAN)",
    "reconstruct": "a model that reconstructs its input",
    "run": "a saved run: train or open one",
    "export": "an export of this run: press Export ONNX first",
}


def view_reasons(session: LabSession, labels: list[str]) -> dict[str, str | None]:
    """For each view button, None when the tab can use it, else what it needs."""
    model = session.model
    caps = set(getattr(model, "capabilities", ())) if model is not None else set()
    if session.run_id:
        caps.add("run")
    if session.export_folder:
        caps.add("export")
    out: dict[str, str | None] = {}
    for label in labels:
        missing = sorted(VIEW_NEEDS[label] - caps)
        if model is None and missing and missing != ["export"]:
            out[label] = NO_MODEL
        else:
            out[label] = " and ".join(WHY[m] for m in missing) or None
    return out


def view_availability(
    session: LabSession, groups: list[tuple[list[tuple[str, Any]], Any]]
) -> list[Any]:
    """Updates for the view buttons of each group (a tab) and that group's note saying why
    some are disabled."""
    updates: list[Any] = []
    for buttons, _note in groups:
        reasons = view_reasons(session, [label for label, _ in buttons])
        updates.extend(gr.Button(interactive=reasons[label] is None) for label, _ in buttons)
        lines = sorted({f"*{label}* needs {why}." for label, why in reasons.items() if why})
        if any(why == NO_MODEL for why in reasons.values()):
            lines = [f"*{NO_MODEL}*"]
        updates.append(gr.Markdown(value=" ".join(lines)))
    return updates


def serving(session: LabSession, spec: Any) -> Any:
    """The tab's model when it can serve ``spec``; otherwise a user-facing error saying why."""
    from ..applications import ApplicationError

    model = session.require_model()
    spec.require(model)
    if session.training:
        raise ApplicationError("This tab is training; wait for it to finish or press Stop.")
    return model
