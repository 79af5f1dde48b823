"""Benchmark every registered model on digits: speed, test reconstruction vs PCA, and the figure
that defines its family. Prints a markdown table and writes benchmarks/results/models.md.

    .venv/bin/python benchmarks/bench_models.py [--epochs 15] [--models vae,gan]

Which figures a model gets follows from what it declares (its capabilities and parameters), not
from its name, so a third-party plugin is measured the same way.
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from aelab import metrics
from aelab.data import load_data
from aelab.losses import corrupt
from aelab.plugins import get_models
from aelab.train import Done, train

RESULTS = Path(__file__).parent / "results" / "models.md"


def fit(spec: Any, params: dict, data: Any, args: argparse.Namespace) -> Done:
    """Train on digits with the shared settings and return the Done event."""
    config = {
        "epochs": args.epochs,
        "lr": args.lr,
        "batch_size": 64,
        "seed": args.seed,
        "val_fraction": 0.2,
    }
    return list(train(spec, params, data, config, save=False, step_every=0))[-1]


def recon_mse(model: Any, x: torch.Tensor) -> float:
    with torch.no_grad():
        return float(((model.reconstruct(x) - x) ** 2).mean())


def family_figures(spec: Any, model: Any, done: Done, ctx: dict) -> list[str]:
    """The figures this model's declarations call for."""
    x_test, train_set, test_set = ctx["x_test"], ctx["train"], ctx["test"]
    p, out = model.params, []
    fields = type(p).model_fields
    if "elbo" in done.val_losses:
        out.append(f"test ELBO {done.val_losses['elbo']:.2f} (KL {done.val_losses['kl']:.2f})")
    if (
        "corruption" in fields
        and "reconstruct" in model.capabilities
        and p.corruption_strength() > 0
    ):
        g = torch.Generator().manual_seed(1)
        noisy = corrupt(x_test, p.corruption, p.noise, p.noise_mean, p.corrupt_fraction, g)
        with torch.no_grad():
            gain = metrics.psnr(model.reconstruct(noisy), x_test) - metrics.psnr(
                noisy.clamp(0, 1), x_test
            )
        out.append(f"PSNR gain {gain:+.2f} dB ({p.corruption})")
    if "sparsity_target" in fields and (p.kl_weight > 0 or p.l1_weight > 0):
        with torch.no_grad():
            z = model.encode(x_test)
        quiet = float((z < 0.1).float().mean(1).median())
        out.append(
            f"mean activation {float(z.mean()):.3f} (ρ={p.sparsity_target}), {quiet:.0%} units quiet"
        )
    if "contractive_weight" in fields and p.contractive_weight > 0:
        plain = fit(
            spec, {**p.model_dump(), "contractive_weight": 0.0}, ctx["data"], ctx["args"]
        ).model
        j, j0 = (metrics.jacobian_norm(m.eval().encode, x_test[:300]) for m in (model, plain))
        out.append(f"‖J‖_F {j:.3f} vs {j0:.3f} unregularised")
    n_in = int(np.prod(model.sample_shape))
    if "reconstruct" in model.capabilities and int(np.prod(model.code_shape)) >= n_in:
        g = torch.Generator().manual_seed(2)
        ratio = recon_mse(model, torch.rand(x_test.shape, generator=g)) / recon_mse(model, x_test)
        out.append(f"error on noise inputs {ratio:.1f}× that on digits (identity: 1×)")
    if "sample" in model.capabilities:
        q = metrics.sample_quality(
            lambda n, g: model.sample(n, generator=g),
            train_set.x,
            train_set.labels,
            test_set.x,
            test_set.labels,
            n=300,
            seed=0,
            net=ctx["net"],
        )
        out.append(f"FD {q.model:.1f} (real {q.real:.1f}, noise {q.noise:.1f})")
    if model.needs_labels and "sample" in model.capabilities:
        wanted = torch.arange(300) % int(train_set.labels.max() + 1)
        with torch.no_grad():
            got = ctx["net"](
                model.sample(300, torch.Generator().manual_seed(0), labels=wanted)
            ).argmax(1)
        out.append(f"class accuracy of samples {float((got == wanted).float().mean()):.0%}")
    return out


def main() -> None:
    """Run the benchmark and write the table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=15)
    ap.add_argument("--lr", type=float, default=5e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--models", help="comma-separated ids (default: every registered model)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    specs = get_models()
    ids = args.models.split(",") if args.models else list(specs)
    data = load_data("digits")
    train_set, test_set = data.split(0.2, args.seed)
    x_test = torch.as_tensor(test_set.x)
    t0 = time.perf_counter()
    net = metrics.train_feature_net(train_set.x, train_set.labels, seed=args.seed)
    with torch.no_grad():
        acc = float((net(x_test).argmax(1).numpy() == test_set.labels).mean())
    ctx = {
        "data": data,
        "train": train_set,
        "test": test_set,
        "x_test": x_test,
        "net": net,
        "args": args,
    }
    rows = []
    for model_id in ids:
        spec = specs[model_id]
        if data.kind not in spec.accepts:
            continue
        done = fit(spec, {}, data, args)
        model = done.model.eval()
        per_epoch = len(train_set) / done.samples_per_s
        if "reconstruct" in model.capabilities:
            code = int(np.prod(model.code_shape))
            pca = metrics.pca_mse(train_set.x, test_set.x, code)
            rec = f"{recon_mse(model, x_test):.4f} | {pca:.4f} (k={code})"
        else:
            rec = "— | —"
        figures = "; ".join(family_figures(spec, model, done, ctx)) or "—"
        weights = sum(p.numel() for p in model.parameters())
        rows.append(f"| {model_id} | {weights:,} | {per_epoch * 1000:.0f} | {rec} | {figures} |")
        print(rows[-1], flush=True)
    total = time.perf_counter() - t0
    header = [
        "# Model zoo benchmark (digits)",
        "",
        f"Command: `.venv/bin/python benchmarks/bench_models.py --epochs {args.epochs} --lr {args.lr}`; "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, torch {torch.__version__}, "
        f"{platform.machine()} CPU, {args.threads} thread(s), seed {args.seed}, default parameters, "
        f"batch 64, total {total:.0f} s. Times are indicative: the CPU is shared.",
        "",
        "Test = the held-out 20 % of digits (the trainer's own split). PCA = test MSE of PCA with as "
        "many components as the model's code (0 when the code is at least as large as the input). FD = Fréchet distance of classifier features of 300 "
        "samples to held-out digits; real = held-out vs training digits (floor), noise = uniform "
        f"noise (ceiling); the feature classifier's test accuracy is {acc:.0%}. PSNR gain = PSNR of the output minus PSNR of the corrupted input "
        "clipped to [0, 1], both against the clean test digits.",
        "",
        "| model | weights | ms/epoch | test MSE | PCA MSE | family figure |",
        "|---|---:|---:|---:|---:|---|",
    ]
    table = "\n".join(header + rows) + "\n"
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(table, encoding="utf-8")
    print(f"\nwritten to {RESULTS} ({total:.0f} s)")


if __name__ == "__main__":
    main()
