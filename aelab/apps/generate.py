"""Generation: new samples from a model's prior, written as images or arrays (``aelab sample``)."""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import Field

from ..applications import ApplicationError, ApplicationSpec, AppParams
from ..hookspecs import hookimpl
from .common import add_force_json
from .output import atomic_output, check_out

HELP = """\
**How it works.** A model that has a prior — a VAE or an adversarial autoencoder (codes pushed
towards N(0, I)), a GAN (noise N(0, I) into its generator) — turns codes drawn at random from that
prior into new data. None of the samples is a training example; how realistic they look is what
the model learned about the data's distribution. A conditional VAE is told the class as well, so
it generates examples of a chosen class on demand.

**Uses.** Data augmentation (more examples of a rare class), a look at what the model considers
typical, and material for a Fréchet-distance comparison of generative models.

**Reading it.** The same seed gives the same samples. Blurry samples are typical of VAEs (they
average over what the code leaves uncertain); GANs give sharper ones but may cover fewer modes.
"""

MAX_SAMPLES = 10_000


class GenerateParams(AppParams):
    """How many samples, from which seed, of which class."""

    n: int = Field(64, ge=1, le=MAX_SAMPLES, title="Samples", description="How many to draw.")
    seed: int = Field(
        0, ge=0, le=2**31 - 1, title="Seed", description="The same seed gives the same samples."
    )
    label: int | None = Field(
        None,
        ge=0,
        le=999,
        title="Class",
        description="For a conditional model: the class to generate (default: classes in turn).",
    )


@dataclass
class Generated:
    """Samples in [0, 1], shaped like the training data, and how they were drawn."""

    samples: np.ndarray
    seed: int
    label: int | None

    def to_json(self) -> dict[str, Any]:
        """A summary without the arrays."""
        return {
            "n": int(len(self.samples)),
            "shape": list(self.samples.shape[1:]),
            "seed": self.seed,
            "label": self.label,
        }


def generate(model: Any, params: GenerateParams) -> Generated:
    """Draw ``params.n`` samples from the model's prior (a chosen class for a conditional one)."""
    import torch

    SPEC.require(model)
    model.eval()
    device = next(iter(model.parameters()), torch.empty(0)).device
    gen = torch.Generator(device=device)
    gen.manual_seed(params.seed)
    with torch.no_grad():
        if getattr(model, "needs_labels", False):
            n_classes = int(getattr(model.params, "n_classes", 0))
            if params.label is not None and params.label >= n_classes:
                raise ApplicationError(
                    f"Class {params.label} does not exist: this model knows classes 0 to "
                    f"{n_classes - 1}."
                )
            labels = None
            if params.label is not None:
                labels = torch.full((params.n,), params.label, dtype=torch.long, device=device)
            out = model.sample(params.n, generator=gen, labels=labels)
        else:
            if params.label is not None:
                raise ApplicationError(
                    "This model is not conditional, so it cannot generate a chosen class; leave "
                    "the class empty, or train a conditional VAE (cvae)."
                )
            out = model.sample(params.n, generator=gen)
    return Generated(out.float().cpu().numpy().clip(0, 1), params.seed, params.label)


def write(samples: np.ndarray, out: Path, force: bool = False) -> list[Path]:
    """Write samples as a folder of PNGs (images), or one .npy / .npz / .csv file, atomically."""
    out = Path(out)
    check_out(out, force)
    suffix = out.suffix.lower()
    if suffix not in ("", ".npy", ".npz", ".csv"):
        raise ApplicationError(
            f"Write samples to a folder (PNG images), or a .npy, .npz or .csv file, not {out.name}."
        )
    if suffix == "" and samples.ndim != 4:
        raise ApplicationError(
            "These samples are flat vectors, not images: write them to a .npy, .npz or .csv file."
        )
    with atomic_output(out, force, folder=suffix == "") as tmp:
        if suffix == "":
            from PIL import Image

            for i, s in enumerate(samples):
                img = np.round(s.transpose(1, 2, 0) * 255).astype(np.uint8)
                mode = "L" if img.shape[2] == 1 else "RGB"
                Image.fromarray(img[:, :, 0] if mode == "L" else img, mode).save(
                    tmp / f"{i:05d}.png"
                )
        elif suffix == ".npy":
            with open(tmp, "wb") as fh:
                np.save(fh, samples)
        elif suffix == ".npz":
            with open(tmp, "wb") as fh:
                np.savez_compressed(fh, x=samples)
        else:
            np.savetxt(tmp, samples.reshape(len(samples), -1), delimiter=",", fmt="%.6g")
    return sorted(out.iterdir()) if out.is_dir() else [out]


def cmd_sample(args: argparse.Namespace) -> int:
    """``aelab sample RUN -n N --out PATH``."""
    from ..runs import load_run

    run = load_run(args.run)
    params = SPEC.validate_params({"n": args.n, "seed": args.seed, "label": args.label})
    result = generate(run.model, params)
    files = write(result.samples, Path(args.out), args.force) if args.out else []
    summary = {**result.to_json(), "run": run.run_id, "out": args.out, "files": len(files)}
    if args.json:
        print(json.dumps(summary))
    else:
        where = f" to {args.out} ({len(files)} file(s))" if args.out else ""
        print(f"{result.samples.shape[0]} samples from {run.run_id}{where}.")
    return 0


def add_command(sub: argparse._SubParsersAction) -> None:
    """Add ``aelab sample``."""
    s = sub.add_parser("sample", help="generate new samples from a model's prior")
    s.add_argument("run", help="run id (or folder)")
    s.add_argument("-n", type=int, default=64, help="how many samples (default 64)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--label", type=int, help="the class, for a conditional model")
    s.add_argument("--out", help="a folder (PNG images) or a .npy/.npz/.csv file")
    add_force_json(s)
    s.set_defaults(func=cmd_sample)


SPEC = ApplicationSpec(
    id="sample",
    name="Generation",
    description="Draws new samples from the model's prior and writes them as images or arrays; "
    "a conditional model generates a chosen class.",
    params=GenerateParams,
    run=lambda model, data, params: generate(model, params),
    needs=frozenset({"sample"}),
    cli=add_command,
    panel="aelab.ui.panels.generate:build",
    help=HELP,
)


@hookimpl
def register_applications(register):
    """Register generation."""
    register(SPEC)
