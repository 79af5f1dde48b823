"""Compression on the built-in digits: autoencoder codes quantised to b bits against PCA at the
same bytes per sample.

Command (about 4 minutes on a 2-core CPU):

    .venv/bin/python benchmarks/bench_compress.py

The digits are split 80/20 (seed 0). For each code size k, autoencoders (default layers) are
trained on the 80% from several weight seeds; every code unit is then quantised to b bits
(uniformly between its min and max over the held-out 20%, as ``aelab compress`` does by default)
and decoded. PCA keeps k components fitted on the same 80%, quantised the same way, so both cost
exactly k·b/8 bytes of code per sample. Errors are mean squared errors on the held-out 20% in
[0, 1]; the raw size is 64 bytes (8-bit pixels). The table and notes go to stdout and to
benchmarks/results/compress.md.
"""

from __future__ import annotations

import time

import numpy as np
from _common import parse, parser, publish, results_file, results_head

from aelab.apps.compress import FRAMING, CompressParams, compress, psnr, rate_distortion
from aelab.data import load_data
from aelab.plugins import get_model
from aelab.train import Trainer

COMMAND = ".venv/bin/python benchmarks/bench_compress.py"
RESULTS = results_file("compress.md")
CODES = (4, 8, 16, 32)
BITS = (2, 4, 6, 8)
CONFIG = {"epochs": 200, "batch_size": 64, "val_fraction": 0.0}
RAW = 64  # bytes of one 8x8 digit stored as 8-bit pixels


def train(data, code: int, seed: int):
    """An autoencoder with a ``code``-unit code trained on ``data``."""
    config = {**CONFIG, "seed": seed}
    params = {"code_size": code}
    return Trainer(get_model("autoencoder"), params, data, config, save=False).fit().model


def frontier(cells: dict[tuple[int, int], float], budget: float) -> tuple[float, str]:
    """The lowest error among the (code, bits) settings costing at most ``budget`` bytes."""
    fits = [(err, f"{k}×{b}") for (k, b), err in cells.items() if k * b / 8 <= budget]
    return min(fits) if fits else (float("nan"), "-")


def main() -> None:
    args = parse(parser(__doc__, seeds="weight seeds per code size (3)"))
    data = load_data("digits")
    train_part, test = data.split(0.2, 0)
    seeds = list(range(args.seeds))
    ae: dict[tuple[int, int], list[float]] = {}
    ae_float: dict[int, list[float]] = {}
    pca: dict[tuple[int, int], float] = {}
    pca_float: dict[int, float] = {}
    header = 0
    t0 = time.perf_counter()
    for k in CODES:
        for seed in seeds:
            model = train(train_part, k, seed)
            rows = rate_distortion(model, test.x, CompressParams(), x_train=train_part.x, bits=BITS)
            for row in rows:
                ae.setdefault((k, row["bits"]), []).append(row["model_mse"])
                pca[(k, row["bits"])] = row["pca_mse"]  # PCA does not depend on the seed
            full = compress(model, test.x, CompressParams(bits=16), x_train=train_part.x)
            ae_float.setdefault(k, []).append(full.figures()["mse_unquantised"])
            pca_float[k] = full.figures()["pca_mse_unquantised"]
            header = max(header, full.sizes()["header_bytes"] - FRAMING)
    elapsed = time.perf_counter() - t0
    mean = {key: float(np.mean(v)) for key, v in ae.items()}

    lines = [
        "| code bytes / sample | units × bits | ratio (64 raw bytes) | autoencoder MSE "
        f"(mean ± std of {len(seeds)}) | PCA MSE | autoencoder PSNR | PCA PSNR | AE − PCA |",
        "|---:|---|---:|---|---:|---:|---:|---:|",
    ]
    for k, b in sorted(ae, key=lambda kb: (kb[0] * kb[1], kb[0])):
        m, s, p = mean[(k, b)], float(np.std(ae[(k, b)])), pca[(k, b)]
        lines.append(
            f"| {k * b / 8:g} | {k} × {b} | {RAW / (k * b / 8):.1f}× | {m:.5f} ± {s:.5f} | "
            f"{p:.5f} | {psnr(m):.2f} dB | {psnr(p):.2f} dB | {psnr(m) - psnr(p):+.2f} dB |"
        )
    table = "\n".join(lines)

    unq = [
        "| code units | autoencoder MSE, float code | PCA MSE, float code |",
        "|---:|---:|---:|",
    ]
    unq += [f"| {k} | {np.mean(ae_float[k]):.5f} | {pca_float[k]:.5f} |" for k in CODES]

    budgets = sorted({k * b / 8 for k in CODES for b in BITS})
    best = [
        "| budget (code bytes / sample) | best autoencoder (units×bits) | best PCA (units×bits) "
        "| AE − PCA |",
        "|---:|---|---|---:|",
    ]
    wins = 0
    for budget in budgets:
        a, a_at = frontier(mean, budget)
        p, p_at = frontier(pca, budget)
        wins += a < p
        best.append(
            f"| ≤ {budget:g} | {a:.5f} ({a_at}) | {p:.5f} ({p_at}) | {psnr(a) - psnr(p):+.2f} dB |"
        )

    ahead = [(k, b) for (k, b) in mean if mean[(k, b)] < pca[(k, b)]]
    gap8 = ", ".join(f"k = {k}: {psnr(mean[(k, 8)]) - psnr(pca[(k, 8)]):+.2f} dB" for k in CODES)
    behind2 = [k for k in CODES if mean[(k, 2)] > pca[(k, 2)]]
    cost6 = max(
        max(mean[(k, 6)] / np.mean(ae_float[k]), pca[(k, 6)] / pca_float[k]) - 1 for k in CODES
    )
    won = [f"{b:g}" for b in budgets if frontier(mean, b)[0] < frontier(pca, b)[0]]
    lost = [f"{b:g}" for b in budgets if frontier(mean, b)[0] >= frontier(pca, b)[0]]
    notes = [
        f"- Same units and bits: the autoencoder has the lower error in {len(ahead)} of "
        f"{len(mean)} settings. At 8 bits, autoencoder minus PCA in PSNR: {gap8}. PCA's "
        "error keeps falling as components are added (32 of 64 keep almost all of a digit's "
        f"variance: float MSE {pca_float[32]:.5f}), while this autoencoder's levels off "
        f"({np.mean(ae_float[16]):.5f} at 16 units, {np.mean(ae_float[32]):.5f} at 32): its "
        "gain is at small codes.",
        f"- Best setting per byte budget (each method free to pick units and bits): the "
        f"autoencoder is ahead at {wins} of {len(budgets)} budgets (≤ {', '.join(won) or '-'} "
        f"bytes), PCA at ≤ {', '.join(lost) or '-'} bytes.",
        f"- Bits: at 2 bits per unit the autoencoder is behind PCA at {len(behind2)} of "
        f"{len(CODES)} code sizes ({', '.join(f'k = {k}' for k in behind2) or 'none'}): its "
        "non-linear decoder suffers more from coarse steps than PCA's linear map. At 6 bits the "
        f"quantised error is within {cost6:.1%} of the float code's for both methods (second "
        "table), so bits beyond 6 buy almost nothing.",
        f"- The file header (JSON: run, bits, 2k ranges, shapes) is at most {header} bytes plus "
        f"{FRAMING} of framing: {(header + FRAMING) / len(test):.2f} bytes per sample for these "
        f"{len(test)} held-out samples, {(header + FRAMING) / len(data):.2f} for all "
        f"{len(data)} digits. The budgets above count the code only; `aelab compress` reports "
        "both.",
        "- No entropy coding: an arithmetic coder on the integers would lower both columns.",
    ]
    text = "\n".join(
        [
            *results_head(
                "Compression on digits: autoencoder codes against PCA at the same bytes",
                COMMAND,
                elapsed,
            ),
            "Protocol: digits split 80/20 (seed 0). Autoencoders (default layers [128, 128], "
            f"{CONFIG['epochs']} epochs, batch {CONFIG['batch_size']}, Adam 1e-3, weight seeds "
            f"{seeds}) and PCA are fitted on the 80%; every code unit is quantised uniformly to b "
            "bits between its min and max over the held-out 20% and decoded; errors are MSE on "
            "the held-out 20% (values in [0, 1]), PSNR = 10·log₁₀(1/MSE). Both methods cost "
            "k·b/8 bytes of code per sample; the ratio is 64 raw bytes (8-bit pixels) over that.",
            "",
            table,
            "",
            "Without quantisation (float32 codes):",
            "",
            "\n".join(unq),
            "",
            "Best at each budget:",
            "",
            "\n".join(best),
            "",
            *notes,
            "",
        ]
    )
    publish(text, RESULTS, write=not args.no_write)


if __name__ == "__main__":
    main()
