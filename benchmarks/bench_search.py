"""Similarity search on the built-in digits: precision@k in code space vs raw pixels vs PCA.

Command (a few minutes on a 2-core CPU):

    .venv/bin/python benchmarks/bench_search.py

For each split seed, digits is split 80/20 as the trainer splits it (``Dataset.split``); every
model is trained on the 80% only, and each of the 20% held-out samples is a query searched among
the 80% (the index). precision@k is the share of a query's k nearest neighbours that have its
label, averaged over the queries; the raw 64 pixels and PCA with as many components as the code
has units (fitted on the 80%) are searched with the same queries, the same index and the same
distance, in the same run, through ``aelab.apps.search.evaluate``. The table and notes go to
stdout and to benchmarks/results/search.md.
"""

from __future__ import annotations

import time

import numpy as np
from _common import parse, parser, publish, results_file, results_head

from aelab.apps.search import SearchParams, codes, evaluate, neighbours
from aelab.data import load_data
from aelab.plugins import get_model
from aelab.train import Trainer

COMMAND = ".venv/bin/python benchmarks/bench_search.py"
RESULTS = results_file("search.md")
HELD_OUT = 0.2
CONFIG = {"epochs": 100, "batch_size": 64, "val_fraction": 0.0}
K = 10
MODELS = [  # (row name, model id, hyperparameters)
    ("autoencoder, code 8", "autoencoder", {"code_size": 8}),
    ("autoencoder, code 16", "autoencoder", {"code_size": 16}),
    ("denoising AE (gaussian σ 0.2), code 8", "denoising", {"code_size": 8, "noise": 0.2}),
    ("denoising AE (gaussian σ 0.2), code 16", "denoising", {"code_size": 16, "noise": 0.2}),
    ("VAE (mean code), code 8", "vae", {"code_size": 8}),
]
METRICS = ("euclidean", "cosine")


def one_split(data, seed: int) -> dict[tuple[str, str], tuple[float, float]]:
    """(row, metric) -> (precision@1, precision@K) for one split seed."""
    index, queries = data.split(HELD_OUT, seed)
    out: dict[tuple[str, str], tuple[float, float]] = {}
    for name, model_id, params in MODELS:
        config = {**CONFIG, "seed": seed}
        model = Trainer(get_model(model_id), params, index, config, save=False).fit().model
        for metric in METRICS:
            result = evaluate(model, index, SearchParams(k=K, metric=metric), queries=queries)
            code = result.row("code")
            out[(name, metric)] = (code["precision_at_1"], code["precision_at_k"])
            # Raw pixels and PCA do not depend on the model: the same every time, keep one.
            out[("raw pixels, 64 values", metric)] = _pair(result.row("raw"))
            out[(f"PCA, {code['units']} components", metric)] = _pair(result.row("pca"))
            out[("chance", metric)] = (result.chance, result.chance)
    # Standardised code units (z-scores on the index): does the code's scale matter?
    model = (
        Trainer(
            get_model("autoencoder"), {"code_size": 8}, index, {**CONFIG, "seed": seed}, save=False
        )
        .fit()
        .model
    )
    b, q = codes(model, index.x), codes(model, queries.x)
    mu, sd = b.mean(axis=0), b.std(axis=0) + 1e-8
    idx, _ = neighbours((b - mu) / sd, (q - mu) / sd, K)
    same = index.labels[idx] == queries.labels[:, None]
    out[("autoencoder, code 8, units standardised", "euclidean")] = (
        float(same[:, 0].mean()),
        float(same.mean()),
    )
    return out


def _pair(row: dict) -> tuple[float, float]:
    return row["precision_at_1"], row["precision_at_k"]


ORDER = [
    "raw pixels, 64 values",
    "PCA, 8 components",
    "PCA, 16 components",
    "autoencoder, code 8",
    "autoencoder, code 8, units standardised",
    "autoencoder, code 16",
    "denoising AE (gaussian σ 0.2), code 8",
    "denoising AE (gaussian σ 0.2), code 16",
    "VAE (mean code), code 8",
    "chance",
]


def table(per_seed: list[dict], seeds: list[int]) -> tuple[str, dict]:
    """Markdown: mean ± std over split seeds of precision@1 and precision@K per metric."""
    head = f"| search in | units | euclidean P@1 | euclidean P@{K} | cosine P@1 | cosine P@{K} |"
    lines = [head, "|---|---:|---:|---:|---:|---:|"]
    means: dict = {}
    for name in ORDER:
        cells = []
        for metric in METRICS:
            values = [r[(name, metric)] for r in per_seed if (name, metric) in r]
            if not values:
                cells += ["", ""]
                continue
            arr = np.array(values)
            means[(name, metric)] = arr.mean(axis=0)
            for j in (0, 1):
                spread = f" ± {arr[:, j].std():.3f}" if len(values) > 1 else ""
                cells.append(f"{arr[:, j].mean():.3f}{spread}")
        units = {"raw pixels, 64 values": "64", "chance": ""}.get(
            name, "16" if "16" in name else "8"
        )
        lines.append(f"| {name} | {units} | " + " | ".join(cells) + " |")
    return "\n".join(lines), means


def main() -> None:
    args = parse(parser(__doc__, seeds="split seeds (default 3)"))
    data = load_data("digits")
    seeds = list(range(args.seeds))
    t0 = time.perf_counter()
    per_seed = [one_split(data, seed) for seed in seeds]
    elapsed = time.perf_counter() - t0
    text_table, m = table(per_seed, seeds)

    def p(name: str, metric: str = "euclidean") -> float:
        return float(m[(name, metric)][1])

    dae8 = "denoising AE (gaussian σ 0.2), code 8"
    raw, pca8, ae8 = p("raw pixels, 64 values"), p("PCA, 8 components"), p("autoencoder, code 8")
    summary = (
        f"**Code vs pixels vs PCA at 8 units (euclidean precision@{K}):** raw pixels {raw:.3f}, "
        f"PCA {pca8:.3f}, autoencoder {ae8:.3f}, denoising autoencoder {p(dae8):.3f}, over "
        f"{len(seeds)} split(s) of {len(data)} digits. The raw 64 pixels remain the best; a "
        f"denoising autoencoder's 8-unit code comes within {raw - p(dae8):.3f} of them at an "
        f"eighth of the size, and beats PCA at the same size by {p(dae8) - pca8:+.3f}."
    )
    notes = [
        f"- A plain autoencoder's 8-unit code: {ae8:.3f} vs PCA's {pca8:.3f} "
        f"({ae8 - pca8:+.3f}); at 16 units PCA ({p('PCA, 16 components'):.3f}) is close to "
        f"raw pixels and the autoencoder ({p('autoencoder, code 16'):.3f}) does not beat it.",
        f"- What helped: training with input noise (denoising, σ 0.2): "
        f"{p(dae8):.3f} at code 8 and {p('denoising AE (gaussian σ 0.2), code 16'):.3f} at "
        "code 16. Cosine distance changes little for the autoencoders "
        f"({p('autoencoder, code 8', 'cosine'):.3f} at code 8) and hurts PCA "
        f"({p('PCA, 8 components', 'cosine'):.3f}), whose centred components make directions "
        "ambiguous (our reading, not tested); standardising the code units (z-scores) does "
        "not help "
        f"({p('autoencoder, code 8, units standardised'):.3f}).",
        f"- VAE (the mean code, β = 1): {p('VAE (mean code), code 8'):.3f} euclidean, "
        f"{p('VAE (mean code), code 8', 'cosine'):.3f} cosine, the weakest code here; the KL "
        "term, which pulls every code towards the N(0, I) prior, is the likely cause.",
        "- Raw pixels are a strong baseline on 8×8 digits: 64 values are already small and "
        "well aligned. A code earns its keep by its size (an index 8× smaller, faster to "
        "search); larger, less aligned images, where pixel distances are expected to degrade, "
        "are not measured here.",
    ]
    text = "\n".join(
        [
            *results_head(
                "Similarity search on digits: code vs raw pixels vs PCA", COMMAND, elapsed
            ),
            f"Protocol: for each split seed {seeds}, digits is split {1 - HELD_OUT:.0%}/"
            f"{HELD_OUT:.0%}; models train on the {1 - HELD_OUT:.0%} only "
            f"({CONFIG['epochs']} epochs, batch {CONFIG['batch_size']}, Adam 1e-3, default layers "
            f"[128, 128], training seed = split seed); each of the {HELD_OUT:.0%} held-out "
            f"samples (359) is a query searched among the {1 - HELD_OUT:.0%} (1438). "
            f"P@k = share of the k nearest neighbours with the query's label, averaged over "
            "queries; mean ± std over the splits. PCA is fitted on the searched 80% "
            "(no labels). Raw pixels, PCA and the codes use the same queries, index and distance.",
            "",
            text_table,
            "",
            summary,
            "",
            *notes,
            "",
        ]
    )
    publish(text, RESULTS, write=not args.no_write)


if __name__ == "__main__":
    main()
