"""One-class anomaly detection on the built-in digits: aelab's models against PCA.

Command (about 2.5 minutes on a 2-core CPU):

    .venv/bin/python benchmarks/bench_anomaly.py

For each digit d (0-9) and each split seed: d's samples are split 70/30; a model is trained on
the 70% only (the one-class protocol) and scores a held-out mix of the other 30% of d (normal)
and every sample of the nine other digits (anomalies). AUROC says how well the scores rank
anomalies above normal samples. PCA's reconstruction error, fitted on the same 70% at the same
code size, is the baseline, computed in the same run. The table and notes go to stdout and to
benchmarks/results/anomaly.md.
"""

from __future__ import annotations

import time

import numpy as np
from _common import parse, parser, publish, results_file, results_head
from sklearn.decomposition import PCA
from sklearn.metrics import roc_auc_score

from aelab.apps.anomaly import scores
from aelab.data import load_data
from aelab.plugins import get_model
from aelab.train import Trainer

COMMAND = ".venv/bin/python benchmarks/bench_anomaly.py"
RESULTS = results_file("anomaly.md")
TRAIN_SHARE = 0.7
CONFIG = {"epochs": 100, "batch_size": 32, "val_fraction": 0.0}
ENSEMBLE = 5


def split(labels: np.ndarray, digit: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices of d's training part, and of the held-out mix (the rest of d, all others)."""
    own = np.random.default_rng(seed * 100 + digit).permutation(np.flatnonzero(labels == digit))
    n_train = int(TRAIN_SHARE * len(own))
    mix = np.concatenate([own[n_train:], np.flatnonzero(labels != digit)])
    return np.sort(own[:n_train]), np.sort(mix)


def pca_scores(train: np.ndarray, test: np.ndarray, k: int) -> np.ndarray:
    """PCA reconstruction error (mean squared, per sample) at k components."""
    flat_train, flat_test = train.reshape(len(train), -1), test.reshape(len(test), -1)
    pca = PCA(k, random_state=0).fit(flat_train)
    rebuilt = pca.inverse_transform(pca.transform(flat_test))
    return ((rebuilt - flat_test) ** 2).mean(axis=1)


def train(model_id: str, data, seed: int, **params):
    """A model trained on the one-class part with the benchmark's settings."""
    config = {**CONFIG, "seed": seed}
    return Trainer(get_model(model_id), params, data, config, save=False).fit().model


def standardised(model, train_x: np.ndarray, test_x: np.ndarray, kind: str = "auto"):
    """Test scores as z-scores of the model's scores on its own training data, so the members
    of an ensemble weigh alike."""
    ref = scores(model, train_x, kind=kind)
    return (scores(model, test_x, kind=kind) - ref.mean()) / (ref.std() + 1e-12)


def one_digit(data, digit: int, seed: int) -> dict[str, float]:
    """AUROC of every method for one digit and one split."""
    train_idx, mix_idx = split(data.labels, digit, seed)
    part = data.subset(train_idx)
    x_train, x_mix = data.x[train_idx], data.x[mix_idx]
    anomalous = data.labels[mix_idx] != digit
    out: dict[str, float] = {}

    def auroc(name: str, s: np.ndarray) -> None:
        out[name] = float(roc_auc_score(anomalous, s))

    for k in (4, 8):
        auroc(f"PCA, code {k}", pca_scores(x_train, x_mix, k))
        members = []
        for member in range(ENSEMBLE):
            model = train("autoencoder", part, member, code_size=k)
            members.append(standardised(model, x_train, x_mix))
            if member == 0:
                auroc(f"autoencoder, code {k}", scores(model, x_mix))
        auroc(f"ensemble of {ENSEMBLE} autoencoders, code {k}", np.mean(members, axis=0))
    vae = train("vae", part, 0, code_size=4)
    auroc("VAE reconstruction, code 4", scores(vae, x_mix, kind="reconstruction"))
    auroc("VAE negative ELBO, code 4", scores(vae, x_mix, kind="elbo"))
    return out


def table(rows: dict[str, list[list[float]]], seeds: list[int]) -> str:
    """Markdown: per-digit AUROC of the first split, its mean, and the mean over all splits."""
    head = "| method | " + " | ".join(str(d) for d in range(10)) + " | mean | mean over splits |"
    lines = [head, "|---" * 13 + "|"]
    for name, per_seed in rows.items():
        first = per_seed[0]
        means = [float(np.mean(r)) for r in per_seed]
        spread = f" ± {np.std(means):.4f}" if len(means) > 1 else ""
        cells = " | ".join(f"{v:.3f}" for v in first)
        lines.append(f"| {name} | {cells} | {np.mean(first):.4f} | {np.mean(means):.4f}{spread} |")
    return "\n".join(lines)


def main() -> None:
    args = parse(parser(__doc__, seeds="split seeds (default 3)"))
    data = load_data("digits")
    seeds = list(range(args.seeds))
    rows: dict[str, list[list[float]]] = {}
    t0 = time.perf_counter()
    for seed in seeds:
        per_digit = [one_digit(data, d, seed) for d in range(10)]
        for name in per_digit[0]:
            rows.setdefault(name, []).append([r[name] for r in per_digit])
    elapsed = time.perf_counter() - t0
    mean = {name: float(np.mean([np.mean(r) for r in per_seed])) for name, per_seed in rows.items()}
    model_name = f"ensemble of {ENSEMBLE} autoencoders, code 4"
    pca4, best = mean["PCA, code 4"], mean[model_name]
    error_cut = 1 - (1 - best) / (1 - pca4)
    summary = (
        f"**Model vs PCA at code 4:** mean AUROC {best:.4f} ({model_name}) vs {pca4:.4f} (PCA), "
        f"over {len(seeds)} split(s) × 10 digits; the model makes {error_cut:.0%} fewer ranking "
        f"errors (1 − AUROC {1 - best:.4f} vs {1 - pca4:.4f})."
    )
    notes = [
        f"- A single autoencoder at code 4: {mean['autoencoder, code 4']:.4f}; the ensemble of "
        f"{ENSEMBLE} seeds (each member's scores standardised by its training scores, then "
        f"averaged): {best:.4f}.",
        f"- Code size: at code 8 PCA reaches {mean['PCA, code 8']:.4f}, one autoencoder "
        f"{mean['autoencoder, code 8']:.4f} and the ensemble "
        f"{mean[f'ensemble of {ENSEMBLE} autoencoders, code 8']:.4f}; the non-linear model's "
        "edge is largest at a small code, where PCA must drop directions along which the normal "
        "class still varies.",
        f"- VAE (code 4): reconstruction {mean['VAE reconstruction, code 4']:.4f}, negative ELBO "
        f"{mean['VAE negative ELBO, code 4']:.4f}; the KL term does not help here, so the "
        "application's `auto` score is the reconstruction error.",
    ]
    text = "\n".join(
        [
            *results_head("One-class anomaly detection on digits: model vs PCA", COMMAND, elapsed),
            f"Protocol: for each digit, {TRAIN_SHARE:.0%} of its samples train the model (nothing "
            "else); the held-out mix is the rest of that digit (normal) and all other digits "
            f"(anomalies). Training: {CONFIG['epochs']} epochs, batch {CONFIG['batch_size']}, "
            "Adam 1e-3, default layers ([128, 128]); score: mean squared reconstruction error "
            "unless said. PCA is fitted on the same samples. Per-digit AUROC is shown for split "
            f"seed 0; the last column averages the ten-digit mean over split seeds {seeds} "
            "(± their std).",
            "",
            table(rows, seeds),
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
