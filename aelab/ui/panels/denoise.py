"""The lab panel of denoising: noisy / denoised / blur / clean side by side, with PSNR and SSIM."""

from __future__ import annotations

from typing import Any

import gradio as gr
import numpy as np
import pandas as pd

from ..apps import PanelParts, serving
from ..session import LabSession, guarded

SHOWN = 8


def denoise_samples(
    session: LabSession, corruption: str, noise: float, fraction: float, seed: float
) -> tuple[np.ndarray | None, pd.DataFrame, str]:
    """Corrupt eight held-out samples, denoise them and compare (the /denoise endpoint)."""
    from ... import inspect as ins  # torch: not before it is needed
    from ...apps.denoise import denoise
    from ...plugins import get_application

    spec = get_application("denoise")
    model = serving(session, spec)
    params = spec.validate_params(
        {
            "corruption": corruption or "gaussian",
            "noise": 0.3 if noise is None else noise,
            "fraction": 0.3 if fraction is None else fraction,
            "seed": int(seed or 0),
        }
    )
    x = session.test_set().x[:SHOWN]
    result = denoise(model, x, params)
    m = result.means()
    strength = (
        f"σ = {params.noise:g}" if params.corruption == "gaussian" else f"{params.fraction:.0%}"
    )
    head = f"**{params.corruption} noise ({strength}, seed {params.seed}) on {len(x)} held-out samples.** "
    if result.is_image:
        caption = (
            head + f"Mean PSNR against clean: noisy {m['psnr_noisy']:.2f} dB, blur "
            f"{m['psnr_baseline']:.2f} dB, denoised **{m['psnr_denoised']:.2f} dB** "
            f"({m['psnr_denoised'] - m['psnr_noisy']:+.2f} dB over noisy, "
            f"{m['psnr_denoised'] - m['psnr_baseline']:+.2f} dB over the 3×3 blur). Mean SSIM: "
            f"noisy {m['ssim_noisy']:.3f}, blur {m['ssim_baseline']:.3f}, denoised "
            f"**{m['ssim_denoised']:.3f}**. "
        )
        img = ins.image_grid(
            [result.noisy, result.denoised, result.baseline, result.clean],
            ["noisy", "denoised", "blur 3x3", "clean"],
        )
        frame = pd.DataFrame()
    else:
        caption = (
            head + f"Mean PSNR against clean: noisy {m['psnr_noisy']:.2f} dB, denoised "
            f"**{m['psnr_denoised']:.2f} dB** ({m['psnr_denoised'] - m['psnr_noisy']:+.2f} dB); "
            "flat data has no neighbourhood to blur, so the baseline is the noisy input itself. "
        )
        img = None
        frame = pd.DataFrame(
            {
                "sample": np.arange(len(x)),
                "PSNR noisy (dB)": np.round(result.psnr_noisy.astype(float), 2),
                "PSNR denoised (dB)": np.round(result.psnr_denoised.astype(float), 2),
                "gain (dB)": np.round((result.psnr_denoised - result.psnr_noisy).astype(float), 2),
            }
        )
    caption += "`aelab denoise RUN --json` scores more samples; `aelab denoise RUN INPUT --out OUT` cleans your own."
    return img, frame, caption


def _shown(session: LabSession) -> tuple[Any, Any]:
    """Pictures for image data, the table for flat data."""
    image = session.data is None or session.data.kind == "image"
    return gr.Image(visible=image), gr.Dataframe(visible=not image)


def build(spec: Any, session: gr.State) -> PanelParts:
    """The panel: corruption, its strength and seed; a Denoise button; pictures or a table."""
    with gr.Row():
        corruption = gr.Radio(
            ["gaussian", "mask", "salt_pepper"], value="gaussian", label="Corruption"
        )
        noise = gr.Slider(0.0, 1.0, value=0.3, step=0.05, label="Noise level σ (gaussian)")
        fraction = gr.Slider(
            0.0, 0.95, value=0.3, step=0.05, label="Corrupted fraction (mask, salt_pepper)"
        )
        seed = gr.Number(0, label="Seed", precision=0)
    button = gr.Button("Denoise", variant="primary", elem_id="denoise")
    note = gr.Markdown()
    caption = gr.Markdown()
    img = gr.Image(label="noisy / denoised / blur / clean", format="png", interactive=False)
    table = gr.Dataframe(label="PSNR per sample", interactive=False, visible=False)
    event = button.click(
        guarded(denoise_samples),
        [session, corruption, noise, fraction, seed],
        [img, table, caption],
        api_name=spec.id,
    )
    event.then(_shown, [session], [img, table], api_visibility="private")
    return PanelParts([button], note)
