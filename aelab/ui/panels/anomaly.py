"""The lab panel of the anomaly-detection application: scores, threshold, ROC, worst samples."""

from __future__ import annotations

from typing import Any

import gradio as gr
import numpy as np
import pandas as pd

from ...errors import AelabError
from ...series import is_series
from ..apps import PanelParts, serving
from ..session import LabSession, guarded

BINS = 40
SHOWN = 6  # most and least anomalous samples in the picture


def parse_labels(text: str | None) -> list[int] | None:
    """'3' or '3, 5' as a list of class indices; empty means none given."""
    text = (text or "").strip()
    if not text:
        return None
    try:
        return [int(part) for part in text.replace(";", ",").split(",") if part.strip()]
    except ValueError:
        raise AelabError(
            f"Normal classes must be whole numbers separated by commas (like 3 or 3, 5), not "
            f"{text!r}."
        ) from None


def histogram(scores: np.ndarray, threshold: float) -> pd.DataFrame:
    """Score counts per bin, split at the threshold (flagged bins are coloured apart)."""
    edges = np.histogram_bin_edges(scores, bins=BINS)
    rows = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        inside = (scores >= lo) & (scores <= hi if hi == edges[-1] else scores < hi)
        for side, mask in (
            ("below the threshold", scores < threshold),
            ("flagged", scores >= threshold),
        ):
            count = int(np.sum(inside & mask))
            if count:
                rows.append({"score": float((lo + hi) / 2), "samples": count, "side": side})
    return pd.DataFrame(rows, columns=["score", "samples", "side"])


def roc_frame(roc: Any) -> pd.DataFrame | None:
    """The ROC curve next to chance, for the line plot; None without labels."""
    if roc is None:
        return None
    fpr, tpr = (np.asarray(a, dtype=float) for a in roc)
    curve = pd.DataFrame({"false positive rate": fpr, "true positive rate": tpr, "series": "model"})
    chance = pd.DataFrame(
        {"false positive rate": [0.0, 1.0], "true positive rate": [0.0, 1.0], "series": "chance"}
    )
    return pd.concat([curve, chance], ignore_index=True)


def score_data(
    session: LabSession,
    score: str,
    threshold: str,
    contamination: float,
    normal_classes: str,
    which: str,
) -> tuple[Any, Any, Any, str, dict]:
    """Score the tab's data for anomalies (the /anomaly endpoint)."""
    from ... import inspect as ins  # torch: not before it is needed
    from ...apps.anomaly import detect, error_maps
    from ...plugins import get_application

    spec = get_application("anomaly")
    model = serving(session, spec)
    data = session.test_set() if which == "held-out part" else session.data
    if data is None:
        raise AelabError("There is no data yet: press Train, or open a saved run.")
    params = spec.validate_params(
        {
            "score": score,
            "threshold": threshold,
            "contamination": contamination,
            "normal_labels": parse_labels(normal_classes),
        }
    )
    normal = None
    if params.threshold == "normal":
        # The data the model was trained on, restricted to the normal classes when given: a
        # one-class model's threshold must come from that class alone.
        normal = session.train_set()
        if params.normal_labels and normal.labels is not None:
            normal = normal.subset(np.isin(normal.labels, params.normal_labels))
    result = detect(model, data, params, normal=normal)
    order = np.argsort(result.scores)
    worst, best = order[::-1][:SHOWN], order[:SHOWN]
    rows, labels = [data.x[worst]], ["most anomalous"]
    if "reconstruct" in getattr(model, "capabilities", ()):
        maps = error_maps(model, data.x[worst])
        peak = float(np.max(maps)) or 1.0
        rows += [ins.reconstruct(model, data.x[worst]), maps / peak]
        labels += ["reconstruction", "error map"]
    rows.append(data.x[best])
    labels.append("least anomalous")
    if is_series(session.data):
        grid = _along_time(model, session.require_data(), result, params)
    else:
        grid = ins.image_grid(rows, labels)
    caption = (
        f"**{result.n_flagged} of {result.n}** samples flagged: score ({result.score_kind}) at or "
        f"above **{result.threshold:.4g}**, chosen by *{result.threshold_method}*."
    )
    if result.auroc is not None:
        caption += (
            f" Against the labels (normal = classes {params.normal_labels}): **AUROC "
            f"{result.auroc:.3f}**, average precision {result.average_precision:.3f}; 0.5 is "
            "chance, 1.0 ranks every anomaly above every normal sample."
        )
    else:
        caption += " Give the normal classes to measure AUROC and average precision."
    return (
        histogram(result.scores, result.threshold),
        roc_frame(result.roc),
        grid,
        caption,
        result.to_json(),
    )


def _along_time(model: Any, whole: Any, result: Any, params: Any) -> np.ndarray:
    """A series: every window of it scored, each step given the highest score of the windows
    covering it, drawn under the series with the threshold line; steps whose label is not
    normal are shaded."""
    from ...apps.anomaly import scores
    from ...series import series_picture, step_max

    info = whole.series
    per_step = step_max(
        scores(model, whole.x, whole.labels, result.score_kind),
        info.starts,
        info.window,
        len(info.values),
    )
    marks = None
    if params.normal_labels and info.step_labels is not None:
        marks = ~np.isin(info.step_labels, params.normal_labels)
    return series_picture(
        model,
        whole,
        error=per_step,
        threshold=result.threshold,
        error_title=f"anomaly score ({result.score_kind}) per time step: the highest of the "
        "windows covering it",
        marks=marks,
    )


def build(spec: Any, session: gr.State) -> PanelParts:
    """The panel: settings, a Score button, the histogram, the ROC curve and the samples."""
    with gr.Row():
        score = gr.Radio(["auto", "reconstruction", "elbo", "critic"], value="auto", label="Score")
        threshold = gr.Radio(
            [("contamination", "contamination"), ("normal data", "normal"), ("best F1", "best_f1")],
            value="contamination",
            label="Threshold",
        )
    with gr.Row():
        contamination = gr.Slider(0.0, 0.5, value=0.05, step=0.01, label="Contamination")
        normal_classes = gr.Textbox(
            label="Normal classes",
            placeholder="e.g. 3 (the classes the model was trained on)",
            info="With labels: the classes that count as normal, for AUROC and best-F1.",
        )
        which = gr.Radio(
            ["held-out part", "whole dataset"], value="held-out part", label="Score which data"
        )
    button = gr.Button("Score anomalies", variant="primary", elem_id="anomaly-score")
    note = gr.Markdown(elem_id="anomaly-note")
    caption = gr.Markdown(elem_id="anomaly-caption")
    with gr.Row():
        hist = gr.BarPlot(
            x="score",
            y="samples",
            color="side",
            label="Anomaly scores (flagged at and above the threshold)",
            elem_id="anomaly-histogram",
        )
        roc = gr.LinePlot(
            x="false positive rate",
            y="true positive rate",
            color="series",
            label="ROC curve (with labels)",
            elem_id="anomaly-roc",
        )
    # No label drawn over the picture: it carries its own row titles (or, for a series, its
    # legend), which the label would cover.
    grid = gr.Image(
        label="Most anomalous samples (with reconstruction and error map) and least anomalous; "
        "for a series, the scores along its time axis",
        show_label=False,
        format="png",
        interactive=False,
        elem_classes=["pixels"],
    )
    result = gr.JSON(label="result", visible=False)
    button.click(
        guarded(score_data),
        [session, score, threshold, contamination, normal_classes, which],
        [hist, roc, grid, caption, result],
        api_name=spec.id,
    )
    return PanelParts([button], note)
