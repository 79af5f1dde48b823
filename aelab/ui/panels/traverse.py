"""The lab panel of latent traversal: what each code unit controls, as a picture or a table."""

from __future__ import annotations

from typing import Any

import gradio as gr
import numpy as np
import pandas as pd

from ..apps import PanelParts, serving
from ..session import LabSession, guarded


def traverse_view(
    session: LabSession, axes: str, steps: float, span: float, layout: str, label: str
) -> tuple[Any, Any, str]:
    """The traversal of the tab's model (the /traverse endpoint): a picture for images, a table
    of decoded features for flat data."""
    from ...apps.traverse import _axes, traverse
    from ...plugins import get_application

    spec = get_application("traverse")
    model = serving(session, spec)
    values: dict[str, Any] = {
        "axes": _axes(axes),
        "steps": int(steps or 9),
        "span": span,
        "layout": layout,
    }
    if (label or "").strip():
        values["label"] = label.strip()  # the schema refuses a non-number with a sentence
    data = session.require_data() if "sample" not in model.capabilities else None
    result = traverse(model, spec.validate_params(values), data)
    lo, hi = float(result.values.min()), float(result.values.max())
    scale = (
        "the prior's standard deviation around its centre 0"
        if result.scale == "prior"
        else "the spread of the data's codes around their mean"
    )
    if result.layout == "grid":
        what = (
            f"A grid over units z{result.axes[0]} (left to right) and z{result.axes[1]} (bottom "
            "to top)"
        )
    else:
        what = "One row per code unit, each moved alone while the others stay at the centre"
    caption = (
        f"**{what}**, from {lo:+.1f} to {hi:+.1f} in units of {scale}"
        + (f", within class {result.label}" if result.label is not None else "")
        + ". A row that does not change is a unit the model does not use. "
        f"`aelab traverse RUN --axes {','.join(map(str, result.axes))} --steps "
        f"{len(result.values)} --span {span:g} --out traversal.png` writes the picture."
    )
    if len(model.sample_shape) >= 2:
        return gr.Image(result.picture(), visible=True), gr.Dataframe(visible=False), caption
    flat = result.decoded.reshape(-1, result.decoded.shape[-1])
    frame = pd.DataFrame(flat, columns=[f"x{i}" for i in range(flat.shape[1])]).round(4)
    if result.layout == "grid":
        frame.insert(0, f"z{result.axes[1]}", np.repeat(result.values, len(result.values)))
        frame.insert(0, f"z{result.axes[0]}", np.tile(result.values[::-1], len(result.values)))
    else:
        frame.insert(0, "offset", np.tile(result.values, len(result.axes)))
        frame.insert(0, "unit", np.repeat([f"z{a}" for a in result.axes], len(result.values)))
    flat_caption = caption + " Flat data: each row is one decoded sample."
    return gr.Image(None, visible=False), gr.Dataframe(frame, visible=True), flat_caption


def build(spec: Any, session: gr.State) -> PanelParts:
    """The panel: units, steps, span, layout, class; a Traverse button, a picture or a table."""
    with gr.Row():
        axes = gr.Textbox(label="Code units", placeholder="e.g. 0, 3 (default: up to 8)")
        steps = gr.Slider(2, 21, value=9, step=1, label="Steps")
        span = gr.Slider(0.5, 6.0, value=2.5, step=0.5, label="Span (standard deviations)")
        layout = gr.Radio(["auto", "rows", "grid"], value="auto", label="Layout")
        label = gr.Textbox(label="Class (conditional models)", placeholder="e.g. 7")
    button = gr.Button("Traverse", variant="primary", elem_id="traverse")
    note = gr.Markdown()
    caption = gr.Markdown(elem_id="traverse-caption")
    img = gr.Image(label="Decoded codes", format="png", interactive=False)
    table = gr.Dataframe(label="Decoded codes (flat data)", interactive=False, visible=False)
    button.click(
        guarded(traverse_view),
        [session, axes, steps, span, layout, label],
        [img, table, caption],
        api_name=spec.id,
    )
    return PanelParts([button], note)
