"""Generic trainer vs a hand-written PyTorch loop, and the autoencoder vs PCA on digits.

Run: .venv/bin/python benchmarks/bench_trainer.py
Both loops train the same architecture on the same data with the same batch size and evaluate
the validation set once per epoch; they run interleaved, several times, and the median of the
per-pair ratios is reported, so load from other processes affects both sides alike.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.decomposition import PCA
from torch import nn

from aelab.data import load_data
from aelab.plugins import get_model
from aelab.train import Done, train

RESULTS = Path(__file__).parent / "results"


def bare_model(n_in: int, widths: list[int], code: int) -> nn.Module:
    """The same sandwich as the autoencoder plugin, written by hand."""
    sizes = [n_in, *widths, code]
    enc: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        enc.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            enc.append(nn.ReLU())
    rsizes = sizes[::-1]
    dec: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(rsizes[:-1], rsizes[1:])):
        dec.append(nn.Linear(a, b))
        if i < len(rsizes) - 2:
            dec.append(nn.ReLU())
    return nn.Sequential(nn.Flatten(), *enc, *dec)


def bare_loop(
    x_train: torch.Tensor, x_val: torch.Tensor, epochs: int, bs: int, seed: int, fused: bool = False
) -> float:
    """Train with a plain loop (shuffle, step, validate each epoch); returns seconds.

    ``fused``: Adam's fused kernel, as aelab's trainer picks it; the default is what a
    hand-written loop gets from ``torch.optim.Adam(params, lr)``. The clock starts before the
    seeding and the model's construction, as it does around aelab's ``train`` call.
    """
    t0 = time.perf_counter()
    torch.manual_seed(seed)
    model = bare_model(64, [128, 128], 8)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, **({"fused": True} if fused else {}))
    gen = torch.Generator().manual_seed(seed)
    n = len(x_train)
    flat_train = x_train
    for _ in range(epochs):
        model.train()
        perm = torch.randperm(n, generator=gen)
        for i in range(0, n, bs):
            batch = flat_train[perm[i : i + bs]]
            opt.zero_grad(set_to_none=True)
            out = torch.sigmoid(model(batch)).reshape(batch.shape)
            loss = F.mse_loss(out, batch)
            loss.backward()
            opt.step()
        model.eval()
        with torch.no_grad():
            float(F.mse_loss(torch.sigmoid(model(x_val)).reshape(x_val.shape), x_val))
    return time.perf_counter() - t0


def aelab_loop(data, epochs: int, bs: int, seed: int) -> float:
    """Train through aelab's generic trainer with its default event stream; returns seconds."""
    spec = get_model("autoencoder")
    cfg = {"epochs": epochs, "batch_size": bs, "seed": seed, "val_fraction": 0.2, "device": "cpu"}
    t0 = time.perf_counter()
    for ev in train(spec, {"code_size": 8, "layers": 2, "nodes": 128}, data, cfg, save=False):
        if isinstance(ev, Done):
            assert ev.status == "completed"
    return time.perf_counter() - t0


def throughput(repeats: int, epochs: int, bs: int) -> dict[str, float]:
    """Median speed ratios of the trainer to two bare loops, over interleaved repeats.

    ``ratio``: against the same loop with the same (fused) Adam, which isolates the trainer's
    own overhead; ``ratio_default``: against a hand-written loop with torch's default Adam.
    """
    data = load_data("digits")
    tr, va = data.split(0.2, 0)
    x_train, x_val = torch.as_tensor(tr.x), torch.as_tensor(va.x)
    n_samples = len(tr) * epochs
    aelab_loop(data, 1, bs, 0)  # warm-up every path
    bare_loop(x_train, x_val, 1, bs, 0)
    bare_loop(x_train, x_val, 1, bs, 0, fused=True)
    times: dict[str, list[float]] = {"aelab": [], "fused": [], "default": []}
    for r in range(repeats):
        runs = {
            "aelab": lambda r=r: aelab_loop(data, epochs, bs, r),
            "fused": lambda r=r: bare_loop(x_train, x_val, epochs, bs, r, fused=True),
            "default": lambda r=r: bare_loop(x_train, x_val, epochs, bs, r),
        }
        order = list(runs)[r % 3 :] + list(runs)[: r % 3]  # rotate who goes first
        for k in order:
            times[k].append(runs[k]())
    # speed ratio = time of the bare loop / time of aelab, pair by pair
    same = [b / a for a, b in zip(times["aelab"], times["fused"])]
    default = [b / a for a, b in zip(times["aelab"], times["default"])]
    return {
        "bare_sps": n_samples / statistics.median(times["default"]),
        "fused_sps": n_samples / statistics.median(times["fused"]),
        "aelab_sps": n_samples / statistics.median(times["aelab"]),
        "ratio": statistics.median(same),
        "ratio_min": min(same),
        "ratio_max": max(same),
        "ratio_default": statistics.median(default),
    }


def ae_vs_pca(code_sizes: list[int], epochs: int) -> list[dict[str, float]]:
    """Test reconstruction MSE of the autoencoder and of PCA at the same code size."""
    data = load_data("digits")
    rest, test = data.split(0.2, 0)  # the test set is never seen in training
    x_rest = rest.x.reshape(len(rest), -1)
    x_test = test.x.reshape(len(test), -1)
    spec = get_model("autoencoder")
    rows = []
    for code in code_sizes:
        pca = PCA(n_components=code, random_state=0).fit(x_rest)
        pca_mse = float(np.mean((pca.inverse_transform(pca.transform(x_test)) - x_test) ** 2))
        params = {"code_size": code, "layers": 1, "nodes": 512}
        cfg = {"epochs": epochs, "batch_size": 32, "lr": 1e-3, "seed": 0, "val_fraction": 0.1}
        done = None
        for ev in train(spec, params, rest, cfg, save=False, step_every=0):
            done = ev
        with torch.no_grad():
            recon = done.model.reconstruct(torch.as_tensor(test.x)).numpy().reshape(len(test), -1)
        ae_mse = float(np.mean((recon - x_test) ** 2))
        rows.append({"code": code, "ae": ae_mse, "pca": pca_mse})
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=9)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--pca-epochs", type=int, default=150)
    args = ap.parse_args()
    torch.set_num_threads(1)  # both loops single-threaded: comparable on a shared machine

    t = throughput(args.repeats, args.epochs, args.batch_size)
    rows = ae_vs_pca([2, 8, 32], args.pca_epochs)
    lines = [
        "### Trainer throughput (digits, autoencoder 64-128-128-8, batch "
        f"{args.batch_size}, {args.epochs} epochs, 1 thread, median of {args.repeats})",
        "",
        "| loop | samples/s | aelab's speed relative to it |",
        "|---|---:|---:|",
        f"| hand-written PyTorch loop, `torch.optim.Adam(params, lr)` | {t['bare_sps']:,.0f} "
        f"| {t['ratio_default']:.2f} |",
        f"| the same loop with `Adam(..., fused=True)`, as aelab picks | {t['fused_sps']:,.0f} "
        f"| {t['ratio']:.2f} (pairs {t['ratio_min']:.2f}–{t['ratio_max']:.2f}) |",
        f"| aelab generic trainer | {t['aelab_sps']:,.0f} | – |",
        "",
        f"### Test reconstruction MSE on digits (held-out 20%, autoencoder 64-512-code, one hidden layer, "
        f"{args.pca_epochs} epochs)",
        "",
        "| code size | autoencoder | PCA | autoencoder / PCA |",
        "|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(f"| {r['code']} | {r['ae']:.5f} | {r['pca']:.5f} | {r['ae'] / r['pca']:.2f} |")
    text = "\n".join(lines) + "\n"
    print(text)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "trainer.md").write_text(text)
    ok = t["ratio"] >= 0.95 and all(r["ae"] < r["pca"] for r in rows)
    print("targets met" if ok else "TARGETS NOT MET", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
