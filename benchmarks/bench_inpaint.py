"""Inpainting held-out digits: iterative projection with aelab's models against simple fills.

Command (about a minute on a 2-core CPU):

    .venv/bin/python benchmarks/bench_inpaint.py

For each split seed the digits are split 80/20 as the trainer splits them; every model is
trained on the 80% and fills a hole in each held-out digit: the centre quarter, the right or the
bottom half, or a random 30% / 60% of the pixels. The score is the PSNR over the hidden pixels
only (the known ones are copied back, so counting them would flatter every method). The simple
fills — the per-value mean of the training part and neighbour diffusion — are measured in the
same run on the same holes. A last table does the same for the flat swiss roll (one of three
coordinates hidden). The tables and notes go to stdout and to benchmarks/results/inpaint.md.
"""

from __future__ import annotations

import time

import numpy as np
from _common import parse, parser, publish, results_file, results_head

from aelab.apps.inpaint import BASELINE_MEAN, BASELINE_NEIGHBOURS, InpaintParams, inpaint_samples
from aelab.data import load_data
from aelab.plugins import get_model
from aelab.train import Trainer

COMMAND = ".venv/bin/python benchmarks/bench_inpaint.py"
RESULTS = results_file("inpaint.md")
MASKS = {
    "centre quarter": {
        "mask": "rect",
        "rect_x": 0.25,
        "rect_y": 0.25,
        "rect_w": 0.5,
        "rect_h": 0.5,
    },
    "right half": {"mask": "rect", "rect_x": 0.5, "rect_y": 0.0, "rect_w": 0.5, "rect_h": 1.0},
    "bottom half": {"mask": "rect", "rect_x": 0.0, "rect_y": 0.5, "rect_w": 1.0, "rect_h": 0.5},
    "random 30%": {"mask": "random", "fraction": 0.3},
    "random 60%": {"mask": "random", "fraction": 0.6},
}
# (label, model id, hyperparameters, epochs)
MODELS = [
    ("autoencoder, code 16", "autoencoder", {"code_size": 16}, 30),
    ("autoencoder, code 8", "autoencoder", {"code_size": 8}, 30),
    ("VAE, code 8", "vae", {"code_size": 8}, 30),
    (
        "denoising AE (mask noise 0.3), code 16",
        "denoising",
        {"code_size": 16, "noise": 0.3, "corruption": "mask"},
        30,
    ),
    ("convolutional AE", "conv", {}, 20),
]
ITERATIONS = 20


def fit(model_id: str, params: dict, data, epochs: int, seed: int):
    config = {"epochs": epochs, "seed": seed, "val_fraction": 0.0}
    return Trainer(get_model(model_id), params, data, config, save=False).fit().model


def one_split(data, seed: int) -> dict[str, dict[str, float]]:
    """In-mask PSNR of every method under every mask for one split seed."""
    train, held_out = data.split(0.2, seed)
    out: dict[str, dict[str, float]] = {}
    for label, model_id, params, epochs in MODELS:
        model = fit(model_id, params, train, epochs, seed)
        for mask, spec in MASKS.items():
            p = InpaintParams(**spec, seed=seed, iterations=ITERATIONS)
            res = inpaint_samples(model, held_out.x, p, train.x).to_json()
            out.setdefault(label, {})[mask] = res["psnr_model"]
            for name in (BASELINE_MEAN, BASELINE_NEIGHBOURS):
                out.setdefault(name, {})[mask] = res["baselines"][name]["psnr"]
            if label == MODELS[0][0]:
                last = inpaint_samples(
                    model, held_out.x, p.model_copy(update={"select": "last"}), train.x
                ).to_json()
                out.setdefault(f"{label}, last iterate", {})[mask] = last["psnr_model"]
                peak = int(np.argmax(res["psnr_by_iteration"]))
                out.setdefault(f"{label}, best step (oracle)", {})[mask] = res["psnr_by_iteration"][
                    peak
                ]
    return out


def swissroll(seed: int) -> dict[str, float]:
    """One of three coordinates of the held-out swiss roll hidden: model vs per-value mean."""
    train, held_out = load_data("swissroll").split(0.2, seed)
    model = fit("autoencoder", {"code_size": 2}, train, 100, seed)
    p = InpaintParams(mask="random", fraction=0.3, seed=seed, iterations=ITERATIONS)
    res = inpaint_samples(model, held_out.x, p, train.x).to_json()
    return {"autoencoder, code 2": res["psnr_model"], BASELINE_MEAN: res["psnr_baseline"]}


def cell(values: list[float]) -> str:
    spread = f" ± {np.std(values):.2f}" if len(values) > 1 else ""
    return f"{np.mean(values):.2f}{spread}"


def main() -> None:
    args = parse(parser(__doc__, seeds="split seeds (default 3)"))
    data = load_data("digits")
    seeds = list(range(args.seeds))
    t0 = time.perf_counter()
    runs = [one_split(data, s) for s in seeds]
    rolls = [swissroll(s) for s in seeds]
    elapsed = time.perf_counter() - t0
    n = len(data.split(0.2, 0)[1])
    order = [BASELINE_MEAN, BASELINE_NEIGHBOURS] + [
        m for m in runs[0] if m not in (BASELINE_MEAN, BASELINE_NEIGHBOURS)
    ]
    lines = ["| fill | " + " | ".join(MASKS) + " |", "|---" * (len(MASKS) + 1) + "|"]
    for name in order:
        cells = [cell([r[name][m] for r in runs]) for m in MASKS]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    mean = {n: {m: float(np.mean([r[n][m] for r in runs])) for m in MASKS} for n in order}
    best_simple = {m: max(mean[BASELINE_MEAN][m], mean[BASELINE_NEIGHBOURS][m]) for m in MASKS}
    head = MODELS[0][0]
    gains = ", ".join(f"{m} {mean[head][m] - best_simple[m]:+.2f} dB" for m in MASKS)
    roll_lines = [
        "| fill | random 1 of 3 coordinates |",
        "|---|---|",
        *(f"| {n} | {cell([r[n] for r in rolls])} |" for n in rolls[0]),
    ]
    text = "\n".join(
        [
            *results_head("Inpainting held-out digits: model vs simple fills", COMMAND, elapsed),
            "Protocol: digits split 80/20 (split seeds "
            f"{seeds}); models trained on the 80% (Adam 1e-3, batch 64, default layers); "
            f"{ITERATIONS} projection steps from the per-value mean, keeping per sample the "
            "iterate whose reconstruction best matches its known pixels (`consistent`, the "
            f"default) unless said. In-mask PSNR in dB over the hidden pixels of all {n} held-out "
            "digits, mean ± std over the split seeds; higher is better. The *best step "
            "(oracle)* row picks, with the ground truth, the one step count that is best over "
            "all samples.",
            "",
            *lines,
            "",
            f"**{head} against the better simple fill:** {gains}.",
            "",
            "- Small holes and scattered missing pixels are where the model earns its keep; when "
            "half the digit is gone the gain shrinks to about half a dB, as the per-value mean "
            "is the squared-error-optimal guess without context.",
            "- Plain projection (`last`) peaks within a few steps and then drifts; keeping per "
            "sample the most consistent iterate needs no ground truth and beats even the best "
            "single step count chosen with it (the oracle row), since it chooses per sample.",
            "",
            "Flat data, the swiss roll (2000 points in 3-D, one coordinate of each held-out "
            "point hidden; autoencoder with code 2, 100 epochs):",
            "",
            *roll_lines,
            "",
            "- Honest negative: the roll's height is independent of its position along the roll, "
            "and a hidden x or z is ambiguous between the turns, so the mean imputes better; on "
            "64-feature tables such as flattened digits the model wins as on the images "
            "(`tests/test_inpaint.py` checks it on a CSV).",
            "",
        ]
    )
    publish(text, RESULTS, write=not args.no_write)


if __name__ == "__main__":
    main()
