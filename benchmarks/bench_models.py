"""Benchmark every registered model on digits: the literature's figures on held-out digits, each
beside a baseline, plus speed and the figure that defines each family. Writes
benchmarks/results/models.md and prints a README-ready table.

    .venv/bin/python benchmarks/bench_models.py [--epochs 15] [--lr 0.005] [--seeds 3]
        [--seed 0] [--nll-samples 100] [--fd-samples 1000] [--threads 1] [--models vae,gan]

Each model trains on the digits' training split (the trainer's own seeded 80/20 split) with its
default hyperparameters, through ``aelab.train``; ``Trained.evaluate`` (what ``aelab eval``
runs, i.e. ``aelab.assessment.assess``) scores it on the held-out 20 %: MSE, PSNR, SSIM, BCE per
sample, a VAE's ELBO and IWAE NLL bound, a generator's Fréchet distance. The baselines go through
the same ``assess`` functions with stand-ins in the model's place: PCA at the model's code size,
the identity (x̂ = x: the least BCE and Bernoulli NLL grey levels allow), and for the Fréchet
distance real training digits (floor) and uniform noise (ceiling).

Which figures a model gets follows from what it declares (its capabilities and parameters), not
from its name, so a third-party plugin is measured the same way.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np
import torch
from _common import parse, parser, publish, results_file, results_head

import aelab
from aelab import metrics
from aelab.assessment import reconstruction_figures, sample_figures
from aelab.data import Dataset, load_data, load_run_data
from aelab.losses import corrupt
from aelab.plugins import get_models

RESULTS = results_file("models.md")
VAL_FRACTION = 0.2
BATCH_SIZE = 64

# A family figure: a format string and the numbers it shows (averaged over seeds).
Figure = tuple[str, list[float]]


# -- stand-ins for a model, so every baseline goes through aelab.assessment ---------------------


class Reconstructor:
    """A fixed map x ↦ x̂ in a model's place, for ``reconstruction_figures``."""

    capabilities = frozenset({"reconstruct"})

    def __init__(self, fn: Callable[[torch.Tensor], torch.Tensor]):
        self.fn = fn

    def eval(self) -> Reconstructor:
        return self

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(x)


class Sampler:
    """Draws ``fn(n, generator)`` in a generator's place, for ``sample_figures``."""

    capabilities = frozenset({"sample"})

    def __init__(self, fn: Callable[[int, torch.Generator], torch.Tensor]):
        self.fn = fn

    def eval(self) -> Sampler:
        return self

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        return self.fn(n, generator)


def pca(train_x: np.ndarray, k: int) -> Reconstructor:
    """PCA with ``k`` components fitted on the training split, as a reconstructor (the same
    projection as :func:`aelab.metrics.pca_mse`, unclipped)."""
    a = train_x.reshape(len(train_x), -1).astype(np.float64)
    mean = a.mean(0)
    _, _, vt = np.linalg.svd(a - mean, full_matrices=False)
    basis = torch.as_tensor(vt[: min(k, vt.shape[0])])
    mu = torch.as_tensor(mean)

    def project(x: torch.Tensor) -> torch.Tensor:
        b = x.reshape(len(x), -1).double() - mu
        return ((b @ basis.T @ basis) + mu).reshape(x.shape).float()

    return Reconstructor(project)


def baselines(train_set: Dataset, test_set: Dataset, fd_samples: int, seed: int) -> dict:
    """The references every model of one seed is measured against: FD floor and ceiling, and
    the identity reconstruction (its BCE is the binary entropy of the grey levels)."""
    rng = np.random.default_rng(seed + 1)
    train_x = np.asarray(train_set.x, dtype=np.float32)
    order = rng.permutation(len(train_x))
    real = Sampler(lambda n, g: torch.as_tensor(train_x[order[:n]]))
    noise = Sampler(lambda n, g: torch.rand((n, *test_set.sample_shape), generator=g))
    return {
        "real": sample_figures(real, test_set, fd_samples, seed),
        "noise": sample_figures(noise, test_set, fd_samples, seed),
        "identity": reconstruction_figures(Reconstructor(lambda x: x), test_set),
    }


def digits_classifier() -> metrics.FeatureNet:
    """The classifier whose features the Fréchet distance reads (scripts/digits_features.py
    trained it on every built-in digit), with its class head."""
    from importlib import resources

    from safetensors.torch import load_file

    net = metrics.FeatureNet(64, 10)
    path = resources.files("aelab") / "assets" / "digits_features.safetensors"
    with resources.as_file(path) as file:
        net.load_state_dict(load_file(str(file)))
    return net.eval()


# -- training and the family figures ------------------------------------------------------------


def fit(model_id: str, data: Dataset, args: Any, seed: int, **params: Any) -> aelab.api.Trained:
    """Train on the digits' training split with the shared settings, unsaved."""
    return aelab.train(
        model_id,
        data,
        progress=False,
        save=False,
        epochs=args.epochs,
        lr=args.lr,
        batch_size=BATCH_SIZE,
        seed=seed,
        val_fraction=VAL_FRACTION,
        threads=args.threads,
        device="cpu",
        **params,
    )


def family_figures(trained: Any, report: dict, ctx: dict) -> list[Figure]:
    """The figures this model's declarations call for, beyond the assessment's columns."""
    model, test_set = trained.model.eval(), ctx["test"]
    x_test = torch.as_tensor(test_set.x)
    p, out = model.params, []
    fields = type(p).model_fields
    if "kl" in report["losses"]:
        out.append(("KL {0:.2f} nats", [report["losses"]["kl"]]))
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
        out.append((f"PSNR gain {{0:+.2f}} dB ({p.corruption})", [gain]))
    if "sparsity_target" in fields and (p.kl_weight > 0 or p.l1_weight > 0):
        with torch.no_grad():
            z = model.encode(x_test)
        quiet = float((z < 0.1).float().mean(1).median())
        out.append(
            (
                f"mean activation {{0:.3f}} (ρ {p.sparsity_target}), {{1:.0%}} of units quiet",
                [float(z.mean()), quiet],
            )
        )
    if "contractive_weight" in fields and p.contractive_weight > 0:
        plain = fit(trained.spec.id, ctx["data"], ctx["args"], ctx["seed"], contractive_weight=0.0)
        j, j0 = (metrics.jacobian_norm(m.eval().encode, x_test[:300]) for m in (model, plain.model))
        out.append(("‖J‖_F {0:.2f} vs {1:.2f} unregularised", [j, j0]))
    n_in = int(np.prod(model.sample_shape))
    if "reconstruct" in model.capabilities and int(np.prod(model.code_shape)) >= n_in:
        g = torch.Generator().manual_seed(2)
        noise = replace(test_set, x=torch.rand(x_test.shape, generator=g).numpy())
        ratio = reconstruction_figures(model, noise)["mse"] / report["figures"]["mse"]
        out.append(("error on noise inputs {0:.1f}× that on digits (identity: 1×)", [ratio]))
    if model.needs_labels and "sample" in model.capabilities:
        wanted = torch.arange(300) % int(test_set.labels.max() + 1)
        with torch.no_grad():
            got = ctx["classifier"](
                model.sample(300, torch.Generator().manual_seed(0), labels=wanted)
            ).argmax(1)
        out.append(
            ("samples {0:.0%} of the requested class", [float((got == wanted).float().mean())])
        )
    return out


# -- one model, one seed ------------------------------------------------------------------------


def measure(model_id: str, ctx: dict) -> dict:
    """Train, evaluate on the held-out split, and put the PCA baseline beside it."""
    args, seed = ctx["args"], ctx["seed"]
    trained = fit(model_id, ctx["data"], args, seed)
    report = trained.evaluate(split="val", nll_samples=args.nll_samples, fd_samples=args.fd_samples)
    model = trained.model.eval()
    fig = report["figures"]
    assert report["n"] == len(ctx["test"]), "evaluate scored another split than the baselines"
    row: dict[str, Any] = {
        "status": trained.status,
        "weights": sum(p.numel() for p in model.parameters()),
        "ms_epoch": 1000 * len(ctx["train"]) / trained.done.samples_per_s,
        "figures": fig,
        "family": family_figures(trained, report, ctx),
    }
    if "mse" in fig:
        # Sanity: PSNR is 10·log10(1/MSE) on data in [0, 1].
        assert math.isclose(fig["psnr"], 10 * math.log10(1 / fig["mse"]), rel_tol=1e-9)
        k = int(np.prod(model.code_shape))
        row["pca_k"], row["n_in"] = k, int(np.prod(model.sample_shape))
        if k < row["n_in"]:
            row["pca"] = reconstruction_figures(pca(ctx["train"].x, k), ctx["test"])
            reference = metrics.pca_mse(ctx["train"].x, ctx["test"].x, k)
            assert math.isclose(row["pca"]["mse"], reference, rel_tol=1e-4), (
                row["pca"]["mse"],
                reference,
            )
    if "nll" in fig:
        # Sanity: the IWAE bound is never above −ELBO (Jensen, on the same K draws).
        assert fig["nll"] <= -fig["elbo"] + 1e-6, (fig["nll"], fig["elbo"])
    return row


# -- the table ----------------------------------------------------------------------------------


def summary(values: list[float], fmt: str) -> str:
    """The mean, and ± the standard deviation over seeds when there are several."""
    text = format(statistics.fmean(values), fmt)
    if len(values) > 1:
        text += " ± " + format(statistics.stdev(values), fmt)
    return text


def cell(rows: list[dict], get: Callable[[dict], float | None], fmt: str) -> str:
    vals = [get(r) for r in rows]
    if any(v is None for v in vals):
        return "—"
    return summary([float(v) for v in vals], fmt)


def figure(fig: str) -> Callable[[dict], float | None]:
    return lambda r: r["figures"].get(fig)


def table_row(model_id: str, rows: list[dict]) -> str:
    """One model's row over every seed."""
    first = rows[0]
    if "pca_k" not in first:
        pca_cell = "—"
    elif "pca" not in first:
        pca_cell = f"exact (k={first['pca_k']} ≥ {first['n_in']} values)"
    else:
        mse = cell(rows, lambda r: r["pca"]["mse"], ".4f")
        db = cell(rows, lambda r: r["pca"]["psnr"], ".2f")
        pca_cell = f"{mse} · {db} dB (k={first['pca_k']})"
    family: list[str] = []
    for i, (template, _) in enumerate(first["family"]):
        means = np.mean([r["family"][i][1] for r in rows], axis=0)
        family.append(template.format(*means))
    status = {r["status"] for r in rows} - {"completed"}
    if status:
        family.append("status: " + ", ".join(sorted(status)))
    cells = [
        model_id,
        f"{first['weights']:,}",
        f"{statistics.fmean(r['ms_epoch'] for r in rows):.0f}",
        cell(rows, figure("mse"), ".4f"),
        cell(rows, figure("psnr"), ".2f"),
        pca_cell,
        cell(rows, figure("ssim"), ".3f"),
        cell(rows, figure("bce"), ".2f"),
        cell(rows, lambda r: -r["figures"]["elbo"] if "elbo" in r["figures"] else None, ".2f"),
        cell(rows, figure("nll"), ".2f"),
        cell(rows, figure("fd"), ".1f"),
        "; ".join(family) or "—",
    ]
    return "| " + " | ".join(cells) + " |"


def baseline_rows(bases: list[dict]) -> list[str]:
    """The reference rows: the identity (BCE floor) and the Fréchet distance's floor and
    ceiling."""
    ident = [b["identity"] for b in bases]
    mse = format(statistics.fmean(r["mse"] for r in ident), ".4g")  # 0
    db = (
        "∞"
        if any(math.isinf(r["psnr"]) for r in ident)
        else summary([r["psnr"] for r in ident], ".2f")
    )
    ssim = format(statistics.fmean(r["ssim"] for r in ident), ".4g")  # 1
    bce = summary([r["bce"] for r in ident], ".2f")
    real = summary([b["real"]["fd"] for b in bases], ".1f")
    noise = summary([b["noise"]["fd"] for b in bases], ".1f")
    blank = " | ".join(["—"] * 9)
    return [
        f"| *identity x̂ = x* | — | — | {mse} | {db} | — | {ssim} | {bce} | — | ≥ {bce} | — | "
        "the least BCE and NLL grey levels allow |",
        f"| *real digits (training split)* | {blank} | {real} | FD floor: another real sample |",
        f"| *uniform noise* | {blank} | {noise} | FD ceiling |",
    ]


HEADER = [
    "| model | weights | ms/epoch | MSE | PSNR dB | PCA MSE · PSNR (k) | SSIM | BCE nats | −ELBO "
    "nats | NLL nats (K={k}) | FD (n={n}) | family figure |",
    "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
]


def main() -> None:
    """Run the benchmark and write the table."""
    cli = parser(__doc__)
    cli.add_argument("--epochs", type=int, default=15)
    cli.add_argument("--lr", type=float, default=5e-3)
    cli.add_argument("--seed", type=int, default=0, help="the first seed")
    cli.add_argument("--seeds", type=int, default=3, help="seeds seed, seed+1, ... (default 3)")
    cli.add_argument("--nll-samples", type=int, default=100, help="K of the IWAE bound")
    cli.add_argument("--fd-samples", type=int, default=1000, help="at most the held-out count")
    cli.add_argument("--threads", type=int, default=1)
    cli.add_argument("--models", help="comma-separated ids (default: every registered model)")
    args = parse(cli)
    torch.set_num_threads(args.threads)
    specs = get_models()
    ids = args.models.split(",") if args.models else list(specs)
    data = load_data("digits")
    skipped = [m for m in ids if data.kind not in specs[m].accepts]
    ids = [m for m in ids if m not in skipped]
    seeds = list(range(args.seed, args.seed + args.seeds))
    classifier = digits_classifier()
    t0 = time.perf_counter()
    results: dict[str, list[dict]] = {m: [] for m in ids}
    bases: list[dict] = []
    for seed in seeds:
        # The split evaluate() scores: the run's data reloaded and split as the trainer split it.
        train_set, test_set = load_run_data(data.meta(), VAL_FRACTION, seed)
        bases.append(baselines(train_set, test_set, args.fd_samples, seed))
        ctx = {
            "args": args,
            "seed": seed,
            "data": data,
            "train": train_set,
            "test": test_set,
            "classifier": classifier,
        }
        for model_id in ids:
            results[model_id].append(measure(model_id, ctx))
            print(f"seed {seed}: {table_row(model_id, results[model_id][-1:])}", flush=True)
    total = time.perf_counter() - t0
    with torch.no_grad():
        accuracy = float(
            (classifier(torch.as_tensor(test_set.x)).argmax(1).numpy() == test_set.labels).mean()
        )
    n_fd = bases[0]["real"]["fd_samples"]
    header = [h.format(k=args.nll_samples, n=n_fd) for h in HEADER]
    rows = [table_row(m, results[m]) for m in ids] + baseline_rows(bases)
    table = "\n".join(header + rows)
    command = (
        f".venv/bin/python benchmarks/bench_models.py --epochs {args.epochs} --lr {args.lr} "
        f"--seeds {args.seeds}"
        + (f" --seed {args.seed}" if args.seed else "")
        + (f" --nll-samples {args.nll_samples}" if args.nll_samples != 100 else "")
        + (f" --fd-samples {args.fd_samples}" if args.fd_samples != 1000 else "")
        + (f" --threads {args.threads}" if args.threads != 1 else "")
        + (f" --models {args.models}" if args.models else "")
    )
    seed_text = ", ".join(map(str, seeds))
    spread = "one seed"
    if len(seeds) > 1:
        spread = "mean ± standard deviation over the seeds, family figures the mean"
    lines = results_head(
        "Model zoo benchmark (digits)", command, total, f"{args.threads} thread(s)"
    ) + [
        f"Seeds {seed_text} (each seeds the weights, the shuffling and the 80/20 split); "
        f"{spread}. "
        "Every model with its default hyperparameters (the VAE and "
        "the CVAE train with their default loss, bce: a Bernoulli decoder), "
        f"{args.epochs} epochs, Adam lr {args.lr}, batch {BATCH_SIZE}, on the CPU; "
        f"{time.strftime('%Y-%m-%d', time.gmtime())}. Times are indicative: the CPU is shared."
        + (f" Skipped (cannot take digits): {', '.join(skipped)}." if skipped else ""),
        "",
        f"Every figure is `aelab.assessment.assess` (what `aelab eval` reports) on the held-out "
        f"{len(test_set)} digits (grey levels in [0, 1], not binarised), from "
        "`Trained.evaluate(split='val', nll_samples=K, fd_samples=...)`. MSE per pixel; "
        "PSNR = 10·log10(1/MSE); SSIM on the 8×8 images; BCE = binary cross-entropy summed over "
        "a sample's 64 pixels; all from deterministic reconstructions (a VAE's posterior mean). "
        "−ELBO and NLL (the importance-weighted bound of Burda et al. with K samples, never above "
        "−ELBO) in nats per digit under the Bernoulli decoder; for the CVAE they are of the digit "
        "given its label. On grey levels a Bernoulli likelihood is not normalised, so BCE and "
        "NLL cannot fall below the digits' binary entropy (the identity row) and do not compare "
        "with binarised-MNIST figures (784 binary pixels). PCA = PCA fitted on the training "
        "split with as many components as the model's code, same figures on the same digits. "
        f"FD = Fréchet distance of {n_fd} generated to {n_fd} held-out digits in the feature "
        f"space of {bases[0]['real']['fd_features'].replace(' (', ', ').rstrip(')')}; "
        f"trained on all {len(data)} digits, so these too: {accuracy:.0%} right on them; "
        f"floor = {n_fd} training digits, "
        "ceiling = uniform noise, same count and features. Family figure: KL = the test KL "
        "term; PSNR gain = PSNR of the output minus that of the corrupted input clipped to "
        "[0, 1]; class accuracy by the same classifier; ms/epoch over the training split.",
        "",
        table,
        "",
    ]
    publish("\n".join(lines), RESULTS, write=not args.no_write)


if __name__ == "__main__":
    main()
