"""Loss curves that stay readable: terms on very different scales (a VAE's reconstruction in the
tens, its KL in units, a sparsity penalty in thousandths) go to two panels, and every term keeps
one colour — the same in the live chart and in a reopened run — with its validation line a paler
shade of it."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

# A term whose typical size is below the largest term's by more than this goes to the second panel.
SCALE_RATIO = 5.0
# Colour-blind-safe hues (Okabe-Ito without yellow); validation lines are these mixed with white.
HUES = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#56B4E9", "#E69F00", "#000000"]
SPLITS = ("train", "validation")


def _term(series: str) -> str:
    return series.split(" · ")[0]


def _paler(hex_colour: str, amount: float = 0.45) -> str:
    r, g, b = (int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))
    mix = [round(c + (255 - c) * amount) for c in (r, g, b)]
    return "#" + "".join(f"{c:02x}" for c in mix)


def terms_in_order(rows: list[dict[str, Any]]) -> list[str]:
    """Terms by first appearance: the order of the model's loss dict, live or reopened."""
    seen: dict[str, None] = {}
    for r in rows:
        seen.setdefault(_term(r["series"]), None)
    return list(seen)


def colour_map(rows: list[dict[str, Any]]) -> dict[str, str]:
    """A colour per series: one hue per term, paler for its validation line."""
    out = {}
    for k, term in enumerate(terms_in_order(rows)):
        hue = HUES[k % len(HUES)]
        out[f"{term} · train"] = hue
        out[f"{term} · validation"] = _paler(hue)
    return out


def split_terms(rows: list[dict[str, Any]]) -> tuple[list[str], list[str]]:
    """(terms for the main panel, terms for the small-scale panel), by each term's median size."""
    sizes: dict[str, list[float]] = {}
    for r in rows:
        v = r["loss"]
        if isinstance(v, float) and not math.isfinite(v):
            continue
        sizes.setdefault(_term(r["series"]), []).append(abs(float(v)))
    order = terms_in_order(rows)
    typical = {t: float(np.median(sizes[t])) if sizes.get(t) else 0.0 for t in order}
    top = max(typical.values(), default=0.0)
    if top <= 0:
        return order, []
    main = [t for t in order if typical[t] * SCALE_RATIO >= top]
    return main, [t for t in order if t not in main]


def frame(rows: list[dict[str, Any]], terms: list[str]) -> pd.DataFrame | None:
    """The rows of these terms as the plot's DataFrame; None when there are none."""
    keep = set(terms)
    picked = [r for r in rows if _term(r["series"]) in keep]
    if not picked:
        return None
    return pd.DataFrame(
        {
            "epoch": np.fromiter((r["epoch"] for r in picked), np.float64, len(picked)),
            "loss": np.fromiter((r["loss"] for r in picked), np.float64, len(picked)),
            "series": [r["series"] for r in picked],
        }
    )


def panels(rows: list[dict[str, Any]]) -> tuple[Any, Any]:
    """Updates for the main loss plot and the small-scale one (hidden when every term fits the
    main panel), each with the series' fixed colours."""
    import gradio as gr

    colours = colour_map(rows)
    main, small = split_terms(rows)
    main_plot = gr.LinePlot(value=frame(rows, main), color_map=colours)
    if not small:
        return main_plot, gr.LinePlot(value=None, visible=False)
    label = f"Smaller loss terms ({', '.join(small)}): on their own scale"
    small_plot = gr.LinePlot(value=frame(rows, small), color_map=colours, visible=True, label=label)
    return main_plot, small_plot


def run_rows(histories: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """One loss line per run for the Runs tab's comparison: its total validation loss after
    each epoch (its training loss, marked so, when it held nothing out); the series are
    ``"RUN · validation"`` or ``"RUN · train"``, so each run is a term of :func:`split_terms`."""
    rows = []
    for run_id, history in histories.items():
        split = "validation" if any(h.get("val_losses") for h in history) else "train"
        key = "val_losses" if split == "validation" else "losses"
        for h in history:
            v = (h.get(key) or {}).get("total")
            if isinstance(v, (int, float)) and math.isfinite(v):
                rows.append(
                    {"epoch": float(h["epoch"]), "loss": float(v), "series": f"{run_id} · {split}"}
                )
    return rows


def run_panels(histories: dict[str, list[dict[str, Any]]]) -> tuple[Any, Any]:
    """Updates for the comparison's loss chart and its small-scale panel (hidden unless a run's
    loss is far below the others': a VAE's summed nats beside an autoencoder's MSE), each run
    in its own colour."""
    import gradio as gr

    rows = run_rows(histories)
    runs = terms_in_order(rows)
    colours = {}
    for k, run in enumerate(runs):
        for split in SPLITS:
            colours[f"{run} · {split}"] = HUES[k % len(HUES)]
    main, small = split_terms(rows)
    main_plot = gr.LinePlot(value=frame(rows, main), color_map=colours)
    if not small:
        return main_plot, gr.LinePlot(value=None, visible=False)
    label = f"Runs with smaller losses ({', '.join(small)}): on their own scale"
    small_plot = gr.LinePlot(value=frame(rows, small), color_map=colours, visible=True, label=label)
    return main_plot, small_plot
