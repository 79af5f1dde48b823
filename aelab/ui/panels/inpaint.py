"""The lab panel of inpainting: masked / mean fill / model fill / original / error, the in-mask
error of the model against simple fills, and the in-mask PSNR per projection step."""

from __future__ import annotations

from typing import Any

import gradio as gr
import numpy as np
import pandas as pd

from ..apps import PanelParts, serving
from ..session import LabSession, guarded

SHOWN = 8  # samples in the picture (flat data: rows of the values table)
SHOWN_FEATURES = 12  # columns of the values table
HOLE = np.array([0.95, 0.3, 0.3], np.float32)  # the colour of hidden pixels in the picture
PSNR = "in-mask PSNR (dB)"
TOP = 36  # white rows above the picture, under the image label


def painted(masked: np.ndarray, hidden: np.ndarray) -> np.ndarray:
    """Images (N, C, H, W) as RGB with the hidden pixels painted in the hole colour."""
    rgb = np.repeat(masked, 3, axis=1) if masked.shape[1] == 1 else masked[:, :3]
    rgb = np.nan_to_num(rgb, nan=0.0).astype(np.float32)
    hole = hidden.any(axis=1, keepdims=True)
    return np.where(hole, HOLE[None, :, None, None], rgb)


def scores_frame(result: Any) -> pd.DataFrame:
    """In-mask MSE and PSNR of the model and each simple fill, with the gain over the best."""
    scores = result.scores()
    best = result.best_baseline()
    p = result.params
    names = {"model": f"model ({p.iterations} steps, {p.select})"}
    rows = []
    for name, s in scores.items():
        rows.append(
            {
                "fill": names.get(name, name),
                "MSE": round(s["mse"], 5),
                "PSNR (dB)": round(s["psnr"], 2),
                "vs best (dB)": round(s["psnr"] - scores[best]["psnr"], 2),
            }
        )
    return pd.DataFrame(rows)


def curve_frame(result: Any) -> pd.DataFrame:
    """In-mask PSNR of plain projection after each step, with the simple fills and the kept
    fill as flat lines."""
    by_step = result.psnr_by_iteration() or []
    steps = np.arange(len(by_step))
    frames = [pd.DataFrame({"iteration": steps, PSNR: by_step, "series": "projection step"})]
    ends = [0, max(len(by_step) - 1, 1)]
    flat = {name: s["psnr"] for name, s in result.scores().items() if name != "model"}
    flat[f"kept ({result.params.select})"] = result.scores()["model"]["psnr"]
    for name, value in flat.items():
        frames.append(pd.DataFrame({"iteration": ends, PSNR: [value, value], "series": name}))
    return pd.concat(frames, ignore_index=True)


def values_frame(result: Any) -> pd.DataFrame:
    """Flat data: the first samples' values, hidden ones as 'filled (true)'."""
    n = min(SHOWN, len(result.filled))
    d = min(SHOWN_FEATURES, result.filled.shape[1])
    rows = []
    for i in range(n):
        row: dict[str, Any] = {"sample": i}
        for j in range(d):
            if result.hidden[i, j]:
                true = "" if result.original is None else f" ({result.original[i, j]:.3f})"
                row[f"x{j}"] = f"▸ {result.filled[i, j]:.3f}{true}"
            else:
                row[f"x{j}"] = f"{result.filled[i, j]:.3f}"
        rows.append(row)
    return pd.DataFrame(rows)


def _mask_words(result: Any) -> str:
    p = result.params
    share = f"{result.hidden.mean():.0%} of the values"
    if result.mask_kind == "rect":
        return (
            f"a rectangle at ({p.rect_x:g}, {p.rect_y:g}), {p.rect_w:g} × {p.rect_h:g} of the "
            f"image ({share})"
        )
    return f"a random {p.fraction:.0%} of the values (seed {p.seed}; {share})"


def _cli_mask(result: Any) -> str:
    p = result.params
    if result.mask_kind == "rect":
        return f"rect:{p.rect_x:g},{p.rect_y:g},{p.rect_w:g},{p.rect_h:g}"
    return f"random:{p.fraction:g}"


def inpaint_panel(
    session: LabSession,
    mask: str,
    rect_x: float,
    rect_y: float,
    rect_w: float,
    rect_h: float,
    fraction: float,
    iterations: float,
    init: str,
    init_value: float,
    select: str,
    seed: float,
    progress: gr.Progress = gr.Progress(),  # noqa: B008 - gradio's way to report progress
) -> tuple[np.ndarray | None, pd.DataFrame, pd.DataFrame, pd.DataFrame, str]:
    """Hide part of the held-out samples, fill it with the model and score the fill inside the
    hole against simple fills (the /inpaint endpoint)."""
    from ... import inspect as ins  # torch: not before it is needed
    from ...apps.inpaint import BASELINE_MEAN, inpaint_samples
    from ...plugins import get_application

    spec = get_application("inpaint")
    model = serving(session, spec)

    def given(value: Any, default: Any) -> Any:
        return default if value is None or value == "" else value

    params = spec.validate_params(
        {
            "mask": given(mask, "auto"),
            "rect_x": given(rect_x, 0.25),
            "rect_y": given(rect_y, 0.25),
            "rect_w": given(rect_w, 0.5),
            "rect_h": given(rect_h, 0.5),
            "fraction": given(fraction, 0.3),
            "iterations": int(given(iterations, 20)),
            "init": given(init, "mean"),
            "init_value": given(init_value, 0.5),
            "select": given(select, "consistent"),
            "seed": int(given(seed, 0)),
        }
    )
    x = session.test_set().x
    reference = session.train_set().x
    progress(0.0, desc="filling the hole")
    result = inpaint_samples(
        model,
        x,
        params,
        reference,
        reference_name="the training part",
        progress=lambda f, d: progress(f, desc=d),
    )
    s = result.to_json()
    best = s["baseline"]
    head = (
        f"**Hid {_mask_words(result)} of {len(x)} held-out samples. In the hole the model's "
        f"fill reaches {s['psnr_model']:.2f} dB, the better simple fill ({best}) "
        f"{s['psnr_baseline']:.2f} dB: {s['psnr_gain_vs_baseline']:+.2f} dB.** "
    )
    steps = (
        f"Each sample kept the iterate most consistent with its known values (on average step "
        f"{s['mean_kept_iteration']:.1f} of {params.iterations}). "
        if params.select == "consistent"
        else f"The last of {params.iterations} steps is kept. "
    )
    cli = (
        f"`aelab inpaint RUN --mask {_cli_mask(result)} --json` scores the same from the "
        "command line; `aelab inpaint RUN INPUT --out OUT` fills your own "
        + (
            "(a PNG's transparent pixels are the hole)."
            if result.is_image
            else "(NaN values or empty CSV cells are the hole)."
        )
    )
    if result.is_image:
        show = slice(0, min(SHOWN, len(x)))
        err = np.where(result.hidden, np.abs(result.filled - result.original), 0.0)[show]
        img = ins.image_grid(
            [
                painted(result.masked[show], result.hidden[show]),
                result.baselines[BASELINE_MEAN][show],
                result.filled[show],
                result.original[show],
                err,
            ],
            ["masked", "mean fill", "model fill", "original", "error in hole"],
        )
        img = np.pad(img, ((TOP, 0), (0, 0), (0, 0)), constant_values=255)  # room for the label
        picture = (
            "Rows: the samples with the hole in red, the per-value mean fill, the model's fill, "
            "the original, and the model's absolute error inside the hole (brighter is worse). "
        )
        values = pd.DataFrame()
    else:
        img = None
        picture = (
            "The table shows the first samples scaled to [0, 1]; hidden values read ▸ filled "
            "(true). A random mask on flat data is imputation of missing values. "
        )
        values = values_frame(result)
    caption = (
        head
        + picture
        + steps
        + "The curve shows the in-mask PSNR after each projection step. "
        + cli
    )
    return img, scores_frame(result), curve_frame(result), values, caption


def _shown(session: LabSession) -> tuple[Any, Any]:
    """The picture for image data, the values table for flat data."""
    image = session.data is None or session.data.kind == "image"
    return gr.Image(visible=image), gr.Dataframe(visible=not image)


def build(spec: Any, session: gr.State) -> PanelParts:
    """The panel: mask, fill settings, an Inpaint button; picture, scores and the step curve."""
    with gr.Row():
        mask = gr.Radio(
            [("auto (rect for images)", "auto"), ("rectangle", "rect"), ("random", "random")],
            value="auto",
            label="Mask",
            elem_id="inpaint-mask",
        )
        fraction = gr.Slider(
            0.01,
            0.95,
            value=0.3,
            step=0.01,
            label="Hidden fraction (random)",
            elem_id="inpaint-fraction",
        )
        seed = gr.Number(0, label="Seed", precision=0, elem_id="inpaint-seed")
    with gr.Row():
        rect_x = gr.Slider(
            0.0, 1.0, value=0.25, step=0.05, label="Rectangle left", elem_id="inpaint-rect-x"
        )
        rect_y = gr.Slider(
            0.0, 1.0, value=0.25, step=0.05, label="Rectangle top", elem_id="inpaint-rect-y"
        )
        rect_w = gr.Slider(
            0.05, 1.0, value=0.5, step=0.05, label="Rectangle width", elem_id="inpaint-rect-w"
        )
        rect_h = gr.Slider(
            0.05, 1.0, value=0.5, step=0.05, label="Rectangle height", elem_id="inpaint-rect-h"
        )
    with gr.Row():
        iterations = gr.Slider(
            0, 200, value=20, step=1, label="Projection steps", elem_id="inpaint-iterations"
        )
        init = gr.Radio(
            ["mean", "neighbours", "value"],
            value="mean",
            label="Initial fill",
            elem_id="inpaint-init",
        )
        init_value = gr.Slider(
            0.0,
            1.0,
            value=0.5,
            step=0.05,
            label="Initial value (value fill)",
            elem_id="inpaint-init-value",
        )
        select = gr.Radio(
            [("most consistent", "consistent"), ("last", "last")],
            value="consistent",
            label="Keep the iterate",
            elem_id="inpaint-select",
        )
    button = gr.Button("Inpaint", variant="primary", elem_id="inpaint")
    note = gr.Markdown(elem_id="inpaint-note")
    caption = gr.Markdown(elem_id="inpaint-caption")
    with gr.Row():
        img = gr.Image(
            label="masked / mean fill / model fill / original / error in hole",
            format="png",
            interactive=False,
            elem_id="inpaint-grid",
            scale=1,
        )
        with gr.Column(scale=1):
            scores = gr.Dataframe(
                label="Error inside the hole only", interactive=False, elem_id="inpaint-scores"
            )
            curve = gr.LinePlot(
                x="iteration",
                y=PSNR,
                color="series",
                label="In-mask PSNR per projection step",
                elem_id="inpaint-curve",
            )
    values = gr.Dataframe(
        label="Filled values (▸ hidden: filled (true))",
        interactive=False,
        visible=False,
        elem_id="inpaint-values",
    )
    event = button.click(
        guarded(inpaint_panel),
        [
            session,
            mask,
            rect_x,
            rect_y,
            rect_w,
            rect_h,
            fraction,
            iterations,
            init,
            init_value,
            select,
            seed,
        ],
        [img, scores, curve, values, caption],
        api_name=spec.id,
    )
    event.then(_shown, [session], [img, values], api_visibility="private")
    return PanelParts([button], note)
