"""The lab panel of compression: original / model at b bits / PCA at the same bytes, and a
rate-distortion plot of both over 1-12 bits."""

from __future__ import annotations

from typing import Any

import gradio as gr
import numpy as np
import pandas as pd

from ..apps import PanelParts, serving
from ..session import LabSession, guarded

SHOWN = 8
FEATURES_SHOWN = 6  # flat data: values of each sample shown in the table


def rd_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """The sweep as long-form rows for the line plot: one line for the model, one for PCA."""
    frame = []
    for row in rows:
        for method, key in (
            ("model", "model_psnr"),
            (f"PCA, {row['pca_components']} comp.", "pca_psnr"),
        ):
            frame.append(
                {
                    "bytes per sample": round(float(row["bytes_per_sample"]), 3),
                    "PSNR (dB)": round(float(row[key]), 3),
                    "method": method,
                    "bits": int(row["bits"]),
                }
            )
    return pd.DataFrame(frame, columns=["bytes per sample", "PSNR (dB)", "method", "bits"])


def _values(v: np.ndarray) -> str:
    shown = ", ".join(f"{a:.3f}" for a in v[:FEATURES_SHOWN])
    return shown + (" …" if len(v) > FEATURES_SHOWN else "")


def _flat_table(result: Any) -> pd.DataFrame:
    """Flat data: the first samples, their reconstructions and squared errors."""
    n = min(SHOWN, result.n)
    x = result.x[:n].reshape(n, -1)
    model = result.reconstruction[:n].reshape(n, -1)
    pca = result.pca_reconstruction[:n].reshape(n, -1)
    return pd.DataFrame(
        {
            "sample": np.arange(n),
            "original": [_values(v) for v in x],
            f"model, {result.quantiser.bits} bits": [_values(v) for v in model],
            "PCA, same bytes": [_values(v) for v in pca],
            "model error": np.round(((model - x) ** 2).mean(axis=1).astype(float), 6),
            "PCA error": np.round(((pca - x) ** 2).mean(axis=1).astype(float), 6),
        }
    )


def caption_text(s: dict[str, Any]) -> str:
    """What the figures mean: bits, bytes, the ratio, the errors."""
    p = s["pca"]
    raw = (
        f"{s['raw_bytes_per_sample']} raw bytes (8-bit pixels; "
        f"{s['raw_float32_bytes_per_sample']} as float32)"
        if s["kind"] == "image"
        else f"{s['raw_bytes_per_sample']} raw bytes (float32 values)"
    )
    range_text = (
        "the held-out samples' own min and max"
        if s["range_from"] == "data"
        else "the training data's min and max (values outside are clipped)"
    )
    cost = round(s["quantisation_cost_db"], 2) + 0.0  # never "-0.00"
    return "\n".join(
        [
            f"**{s['n']} held-out samples, {s['units']} code units × {s['bits']} bits: "
            f"{s['bytes_per_sample']:.2f} bytes per sample against {raw}, "
            f"{s['ratio']:.1f}× smaller.**",
            "",
            f"- *Bytes.* Each unit is stored as a {s['bits']}-bit integer between {range_text}: "
            f"{s['code_bytes_per_sample']:g} bytes of code per sample, plus the file's "
            f"{s['header_bytes']}-byte header (ranges, shapes, run) shared by the {s['n']} "
            "samples. The ratio is raw bytes over that.",
            f"- *Error.* Model: MSE {s['mse']:.5f}, **PSNR {s['psnr']:.2f} dB** "
            f"({s['psnr_unquantised']:.2f} dB unquantised: quantisation costs {cost:.2f} dB). "
            f"PCA with {p['components']} components at the same bytes: MSE {p['mse']:.5f}, "
            f"**PSNR {p['psnr']:.2f} dB**; the model is {s['psnr_gain_vs_pca']:+.2f} dB.",
            f"- *Plot.* 1-12 bits per unit, each extra bit costing {s['units'] / 8:g} "
            f"byte{'' if s['units'] == 8 else 's'} per sample; PSNR = 10·log₁₀(1/MSE), higher is "
            "better (+3 dB halves the error).",
            "",
            "`aelab compress RUN INPUT --bits B --out data.aez` writes the file; "
            "`--decompress data.aez --out recon.npy` restores it.",
        ]
    )


def compress_data(
    session: LabSession, bits: float, range_from: str, progress: Any = gr.Progress()
) -> tuple[Any, Any, pd.DataFrame, str, dict]:
    """Compress the held-out samples at ``bits`` bits per unit and sweep 1-12 bits (the
    /compress endpoint)."""
    from ... import inspect as ins  # torch: not before it is needed
    from ...apps.compress import compress, rate_distortion
    from ...plugins import get_application

    spec = get_application("compress")
    model = serving(session, spec)
    params = spec.validate_params(
        {"bits": 8 if bits is None else bits, "range_from": range_from or "data"}
    )
    test, train = session.test_set(), session.train_set()
    run_id = session.run_id or ""
    model_id = session.spec.id if session.spec is not None else ""
    progress(0.0, desc=f"Compressing at {params.bits} bits")
    result = compress(model, test.x, params, x_train=train.x, run_id=run_id, model_id=model_id)
    summary = result.to_json()

    def step(share: float, what: str) -> None:
        progress(0.1 + 0.9 * share, desc=f"Rate-distortion sweep: {what}")

    rows = rate_distortion(
        model, test.x, params, x_train=train.x, run_id=run_id, model_id=model_id, progress=step
    )
    summary["sweep"] = rows
    if result.is_image:
        k = min(SHOWN, result.n)
        img = ins.image_grid(
            [result.x[:k], result.reconstruction[:k], result.pca_reconstruction[:k]],
            [
                "original",
                f"model, {params.bits} bits",
                f"PCA, {result.pca_components} x {params.bits} bits",
            ],
        )
        table = pd.DataFrame()
    else:
        img, table = None, _flat_table(result)
    return img, table, rd_frame(rows), caption_text(summary), summary


def _shown(session: LabSession) -> tuple[Any, Any]:
    """Pictures for image data, the table for flat data."""
    image = session.data is None or session.data.kind == "image"
    return gr.Image(visible=image), gr.Dataframe(visible=not image)


def build(spec: Any, session: gr.State) -> PanelParts:
    """The panel: bits and range; a Compress button; the pictures or a table; the RD plot."""
    with gr.Row():
        bits = gr.Slider(
            1,
            16,
            value=8,
            step=1,
            label="Bits per code unit",
            info="Each code unit becomes an integer of this many bits (2^bits levels).",
            elem_id="compress-bits",
        )
        range_from = gr.Radio(
            [("the data compressed", "data"), ("the training data", "training")],
            value="data",
            label="Quantisation range from",
            info="Each unit's min and max; stored in the file either way.",
            elem_id="compress-range",
        )
    button = gr.Button("Compress", variant="primary", elem_id="compress")
    note = gr.Markdown(elem_id="compress-note")
    caption = gr.Markdown(elem_id="compress-caption")
    with gr.Row():
        img = gr.Image(  # the grid labels its own rows; a label box would cover the first
            label="original / model at b bits / PCA at the same bytes",
            show_label=False,
            format="png",
            interactive=False,
            elem_id="compress-grid",
        )
        plot = gr.LinePlot(
            x="bytes per sample",
            y="PSNR (dB)",
            color="method",
            label="Rate-distortion: PSNR against bytes per sample, 1-12 bits",
            tooltip=["bits", "bytes per sample", "PSNR (dB)", "method"],
            elem_id="compress-rd",
        )
    table = gr.Dataframe(
        label="First samples: original, model and PCA (squared error per sample)",
        interactive=False,
        visible=False,
        elem_id="compress-table",
    )
    result = gr.JSON(label="result", visible=False)
    event = button.click(
        guarded(compress_data),
        [session, bits, range_from],
        [img, table, plot, caption, result],
        api_name=spec.id,
    )
    event.then(_shown, [session], [img, table], api_visibility="private")
    return PanelParts([button], note)
