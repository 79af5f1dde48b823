"""The lab panel of generation: new samples, of a chosen class for a conditional model."""

from __future__ import annotations

from typing import Any

import gradio as gr
import numpy as np

from ..apps import PanelParts, serving
from ..session import LabSession, guarded


def draw(session: LabSession, n: float, seed: float, label: str) -> tuple[np.ndarray, str]:
    """New samples in rows of eight (the /sample endpoint)."""
    from ... import inspect as ins  # torch: not before it is needed
    from ...apps.generate import generate
    from ...plugins import get_application

    spec = get_application("sample")
    model = serving(session, spec)
    text = (label or "").strip()
    values = {"n": int(n or 16), "seed": int(seed or 0)}
    if text:
        values["label"] = text  # validated (and refused with a sentence) by the schema
    result = generate(model, spec.validate_params(values))
    out = result.samples
    rows = [out[k : k + 8] for k in range(0, len(out), 8)]
    labels = [f"{8 * k + 1}-{8 * k + len(r)}" for k, r in enumerate(rows)]
    img = ins.image_grid(rows, labels, flat="gallery")
    which = f" of class {result.label}" if result.label is not None else ""
    caption = (
        f"{len(out)} new samples{which}, decoded from codes drawn from the prior with seed "
        f"{result.seed}; `aelab sample RUN -n {len(out)} --seed {result.seed}"
        f"{f' --label {result.label}' if result.label is not None else ''} --out samples/` "
        "writes them as PNG files."
    )
    return img, caption


def build(spec: Any, session: gr.State) -> PanelParts:
    """The panel: how many, which seed, which class; a Generate button and the samples."""
    with gr.Row():
        n = gr.Slider(1, 64, value=16, step=1, label="Samples")
        seed = gr.Number(0, label="Seed", precision=0)
        label = gr.Textbox(label="Class (conditional models)", placeholder="e.g. 7")
    button = gr.Button("Generate", variant="primary", elem_id="generate")
    note = gr.Markdown()
    caption = gr.Markdown()
    img = gr.Image(label="Generated samples", format="png", interactive=False)
    button.click(guarded(draw), [session, n, seed, label], [img, caption], api_name=spec.id)
    return PanelParts([button], note)
