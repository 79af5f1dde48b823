"""Denoising on the built-in digits: a denoising autoencoder against the noisy input, a 3×3 blur
and PCA projection, for each of the three corruptions.

Command (about 2 minutes on a 2-core CPU):

    .venv/bin/python benchmarks/bench_denoise.py

The digits are split 80/20 (seed 0). For each corruption (Gaussian σ = 0.3, mask and salt-and-
pepper at 30 %), a denoising autoencoder is trained on the 80 % with that corruption; the held-out
20 % is corrupted from a fixed seed and cleaned by the model (the `denoise` application's own
core), by a 3×3 mean filter, and by PCA (project the noisy image onto the principal components
of the clean training images, at the model's code size: the classic linear denoiser). PSNR and
SSIM against the clean images, averaged per sample, for each; every figure is measured in this
run. The table goes to stdout and to benchmarks/results/denoise.md.
"""

from __future__ import annotations

import time

import numpy as np
from _common import parse, parser, publish, results_file, results_head
from sklearn.decomposition import PCA

from aelab.apps.denoise import DenoiseParams, denoise, psnr, ssim
from aelab.data import load_data
from aelab.plugins import get_model
from aelab.train import Trainer

COMMAND = ".venv/bin/python benchmarks/bench_denoise.py"
RESULTS = results_file("denoise.md")
CODE = 32
PARAMS = {"code_size": CODE, "nodes": 256}
CONFIG = {"epochs": 40, "seed": 0, "val_fraction": 0.0}
CASES = [
    ("gaussian σ 0.3", {"corruption": "gaussian", "noise": 0.3}, {"noise": 0.3}),
    (
        "mask 30 %",
        {"corruption": "mask", "fraction": 0.3},
        {"corruption": "mask", "corrupt_fraction": 0.3},
    ),
    (
        "salt & pepper 30 %",
        {"corruption": "salt_pepper", "fraction": 0.3},
        {"corruption": "salt_pepper", "corrupt_fraction": 0.3},
    ),
]


def pca_denoise(train: np.ndarray, noisy: np.ndarray, k: int) -> np.ndarray:
    """Project noisy images onto the first k principal components of clean training images."""
    pca = PCA(k, random_state=0).fit(train.reshape(len(train), -1))
    flat = pca.inverse_transform(pca.transform(noisy.reshape(len(noisy), -1)))
    return np.clip(flat, 0, 1).reshape(noisy.shape).astype(np.float32)


def main() -> None:
    cli = parser(__doc__)
    cli.add_argument("--epochs", type=int, default=CONFIG["epochs"])
    args = parse(cli)
    data = load_data("digits")
    train, test = data.split(0.2, 0)
    t0 = time.perf_counter()
    lines = [
        "| corruption | noisy | 3×3 blur | PCA projection (32) | denoising AE (32) | "
        "gain over noisy | gain over the best baseline |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    gains = []
    for name, corruption, model_params in CASES:
        config = {**CONFIG, "epochs": args.epochs}
        params = {**PARAMS, **model_params}
        model = Trainer(get_model("denoising"), params, train, config, save=False).fit().model
        result = denoise(model, test.x, DenoiseParams(**corruption, seed=0))
        m = result.means()
        by_pca = pca_denoise(train.x, result.noisy, CODE)
        p_pca = float(np.mean(psnr(by_pca, test.x)))
        s_pca = float(np.mean(ssim(by_pca, test.x)))
        best = max(m["psnr_baseline"], p_pca)
        gain, over_best = m["psnr_denoised"] - m["psnr_noisy"], m["psnr_denoised"] - best
        gains.append((name, gain, over_best))
        lines.append(
            f"| {name} | {m['psnr_noisy']:.2f} dB / {m['ssim_noisy']:.3f} | "
            f"{m['psnr_baseline']:.2f} / {m['ssim_baseline']:.3f} | {p_pca:.2f} / {s_pca:.3f} | "
            f"**{m['psnr_denoised']:.2f} / {m['ssim_denoised']:.3f}** | {gain:+.2f} dB | "
            f"{over_best:+.2f} dB |"
        )
    elapsed = time.perf_counter() - t0
    text = "\n".join(
        [
            *results_head(
                "Denoising on digits: denoising autoencoder vs noisy, blur and PCA",
                COMMAND + ("" if args.epochs == CONFIG["epochs"] else f" --epochs {args.epochs}"),
                elapsed,
            ),
            f"Protocol: digits split 80/20 (seed 0); one denoising autoencoder per corruption "
            f"(code {CODE}, layers [256, 256], {args.epochs} epochs, batch 64, Adam 1e-3) trained "
            "on the 80 % with that corruption; the held-out 359 images corrupted from seed 0. "
            "Each cell: mean PSNR (dB) / mean SSIM (7×7 Gaussian window) against the clean "
            "images. PCA projection: the noisy image through the first 32 principal components "
            "of the clean training images.",
            "",
            *lines,
            "",
            "Gains in PSNR of the autoencoder: "
            + "; ".join(
                f"{n}: {g:+.2f} dB over noisy, {b:+.2f} dB over the best baseline"
                for n, g, b in gains
            )
            + ".",
            "",
        ]
    )
    publish(text, RESULTS, write=not args.no_write)


if __name__ == "__main__":
    main()
