"""The lab panel of dimensionality reduction: the codes of the tab's data, as a table."""

from __future__ import annotations

from typing import Any

import gradio as gr
import pandas as pd

from ..apps import PanelParts, serving
from ..session import LabSession, guarded

SHOWN_ROWS = 20


def codes_table(session: LabSession, which: str) -> tuple[pd.DataFrame, str]:
    """The codes of the held-out part or the whole data (the /encode endpoint)."""
    from ...apps.encode import encode
    from ...plugins import get_application

    spec = get_application("encode")
    model = serving(session, spec)
    data = session.test_set() if which == "held-out part" else session.require_data()
    result = encode(model, data, spec.validate_params({}))
    frame = pd.DataFrame(
        result.codes[:SHOWN_ROWS], columns=[f"z{i}" for i in range(result.codes.shape[1])]
    )
    if result.labels is not None:
        frame["label"] = result.labels[:SHOWN_ROWS]
    summary = result.to_json()
    caption = (
        f"**{summary['n']} samples → {summary['units']} numbers each** (the first "
        f"{min(SHOWN_ROWS, summary['n'])} rows below). Per-unit spread (std): "
        + ", ".join(f"{v:.3g}" for v in summary["std"][:16])
        + (" …" if summary["units"] > 16 else "")
        + ". A unit with almost no spread carries almost nothing. "
        "`aelab encode RUN --data FILE --out codes.csv --labels` writes every row."
    )
    return frame, caption


def build(spec: Any, session: gr.State) -> PanelParts:
    """The panel: which data, an Encode button, a summary and the first rows of codes."""
    which = gr.Radio(["held-out part", "whole dataset"], value="held-out part", label="Encode")
    button = gr.Button("Encode the data", variant="primary", elem_id="encode")
    note = gr.Markdown()
    caption = gr.Markdown()
    table = gr.Dataframe(label="Codes (one row per sample)", interactive=False)
    button.click(guarded(codes_table), [session, which], [table, caption], api_name=spec.id)
    return PanelParts([button], note)
