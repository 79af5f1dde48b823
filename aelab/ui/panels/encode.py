"""The lab panel of dimensionality reduction: the codes of the tab's data, as a table, and a sweep
of held-out error over code sizes against PCA, as a plot."""

from __future__ import annotations

from typing import Any

import gradio as gr
import pandas as pd

from ...params import TrainConfig
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
        result.codes[:SHOWN_ROWS].round(4), columns=[f"z{i}" for i in range(result.codes.shape[1])]
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


def sweep_plot(
    session: LabSession, sizes: str, epochs: float, progress: gr.Progress = gr.Progress()
) -> tuple[pd.DataFrame, str]:
    """Retrain the tab's model at several code sizes; held-out MSE vs PCA (the /encode_sweep
    endpoint)."""
    from ...apps.encode import SweepParams, _sizes, sweep
    from ...params import validate
    from ...plugins import get_application

    serving(session, get_application("encode"))
    params = validate(SweepParams, {"sizes": _sizes(sizes), "epochs": int(epochs or 0) or None})
    cfg = session.config or TrainConfig()

    def tell(done: int, total: int, text: str) -> None:
        progress((done, total), desc=text)

    result = sweep(session.spec, session.params, cfg, session.require_data(), params, tell)
    rows = []
    for r in result.rows:
        if r["model_mse"] is not None:
            rows.append({"code units": r["code_size"], "MSE": r["model_mse"], "series": "model"})
        rows.append({"code units": r["code_size"], "MSE": r["pca_mse"], "series": "PCA"})
    wins = [r["code_size"] for r in result.rows if (r["model_mse"] or 1e9) < r["pca_mse"]]
    caption = (
        f"**Held-out reconstruction error of {result.model} on {result.data}** ({result.n_val} "
        f"samples, {result.epochs} epochs per model) against PCA with as many components, "
        "fitted on the training part. Lower is better. The model beats PCA at code size(s) "
        f"{', '.join(map(str, wins)) or 'none'}. "
        f"`aelab encode RUN --sweep {','.join(str(r['code_size']) for r in result.rows)} "
        f"--epochs {result.epochs} --out sweep.csv` gives the table."
    )
    return pd.DataFrame(rows), caption


def build(spec: Any, session: gr.State) -> PanelParts:
    """The panel: which data, an Encode button, a summary and the first rows of codes."""
    which = gr.Radio(["held-out part", "whole dataset"], value="held-out part", label="Encode")
    button = gr.Button("Encode the data", variant="primary", elem_id="encode")
    note = gr.Markdown()
    caption = gr.Markdown()
    table = gr.Dataframe(label="Codes (one row per sample)", interactive=False)
    button.click(guarded(codes_table), [session, which], [table, caption], api_name=spec.id)
    gr.Markdown(
        "### Code size against PCA\nRetrains this model at each code size with the same "
        "settings (it takes a while) and compares the held-out error with PCA."
    )
    with gr.Row():
        sizes = gr.Textbox("2, 4, 8, 16, 32", label="Code sizes")
        epochs = gr.Number(0, label="Epochs per model (0: the run's own)", precision=0, minimum=0)
    sweep_btn = gr.Button("Sweep code sizes", elem_id="encode-sweep")
    sweep_caption = gr.Markdown(elem_id="encode-sweep-caption")
    plot = gr.LinePlot(
        None,
        x="code units",
        y="MSE",
        color="series",
        label="Held-out reconstruction MSE by code size",
        x_title="code units",
        y_title="MSE per value",
        color_title="",
        elem_id="encode-sweep-plot",
    )
    sweep_btn.click(
        guarded(sweep_plot),
        [session, sizes, epochs],
        [plot, sweep_caption],
        api_name="encode_sweep",
    )
    return PanelParts([button, sweep_btn], note)
