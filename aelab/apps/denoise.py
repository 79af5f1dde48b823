"""Denoising: corrupt clean inputs, clean them with the model, and measure the gain in PSNR and
SSIM against the noisy input and a blur baseline (``aelab denoise``)."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field

from ..applications import ApplicationError, ApplicationSpec, AppParams
from ..hookspecs import hookimpl
from .common import (
    add_force_json,
    add_image_size,
    aligned,
    check_batch,
    check_command,
    clean_samples,
    print_summary,
    read_npy_or_image,
    reconstruct,
)
from .output import atomic_output, check_out, save_npy, write_png, write_pngs, written

HELP = """\
**How it works.** Clean inputs are corrupted the way a denoising autoencoder is trained —
**gaussian** noise x + ε with ε ~ N(0, σ²), **mask** noise (a fraction of the values set to 0)
or **salt_pepper** noise (a fraction set to 0 or 1 at random) — from a fixed seed, clipped to
[0, 1]. The model reconstructs each noisy input (eval mode: no noise of its own, the mean code),
and the result is compared with the clean input.

**Reading it.** PSNR = 10·log₁₀(1 / MSE) in dB for values in [0, 1]: higher is better, and +3 dB
halves the squared error. SSIM (images only) compares local means, contrasts and structure in a
7×7 Gaussian window (σ = 1.5, reflected at the borders, so it fits 8×8 digits): 1 is identical.
The *gain* is denoised minus noisy. The blur baseline is a 3×3 mean filter on each channel — a
model that does not beat it has learned little about the data; on flat data there is no
neighbourhood to blur, so the baseline is the noisy input itself.

**Best results** come from a denoising autoencoder trained on the same corruption and strength;
any model that reconstructs can be tried.
"""

Corruption = Literal["gaussian", "mask", "salt_pepper"]
MAX_PSNR = 100.0  # dB, for a perfect match (the squared error is 0)
SSIM_SIZE, SSIM_SIGMA = 7, 1.5
SSIM_C1, SSIM_C2 = 0.01**2, 0.03**2  # (K·L)² with L = 1, the usual K₁ = 0.01, K₂ = 0.03


class DenoiseParams(AppParams):
    """Which corruption, how strong, from which seed."""

    corruption: Corruption = Field(
        "gaussian",
        title="Corruption",
        description="gaussian adds ε ~ N(0, σ²) to every value; mask sets a fraction of the "
        "values to 0; salt_pepper sets a fraction to 0 or 1.",
    )
    noise: float = Field(
        0.3,
        ge=0.0,
        le=1.0,
        title="Noise level σ",
        description="Standard deviation σ of the Gaussian noise (gaussian corruption only).",
    )
    fraction: float = Field(
        0.3,
        ge=0.0,
        le=0.95,
        title="Corrupted fraction",
        description="Share of the values hit by mask or salt_pepper corruption.",
    )
    seed: int = Field(
        0, ge=0, le=2**31 - 1, title="Seed", description="The same seed gives the same noise."
    )


@dataclass
class DenoiseResult:
    """Noisy inputs, their denoised versions and, with a clean reference, how close each is."""

    noisy: np.ndarray
    denoised: np.ndarray
    clean: np.ndarray | None = None
    baseline: np.ndarray | None = None  # the 3×3 blur of the noisy images (the noisy flat data)
    baseline_name: str = ""
    params: DenoiseParams | None = None
    psnr_noisy: np.ndarray | None = None  # per sample, dB
    psnr_denoised: np.ndarray | None = None
    psnr_baseline: np.ndarray | None = None
    ssim_noisy: np.ndarray | None = None  # per sample; images only
    ssim_denoised: np.ndarray | None = None
    ssim_baseline: np.ndarray | None = None

    @property
    def is_image(self) -> bool:
        """Whether the samples are (C, H, W) images."""
        return self.noisy.ndim == 4

    def means(self) -> dict[str, float | None]:
        """Mean PSNR and SSIM of the noisy, baseline and denoised inputs against the clean."""
        out: dict[str, float | None] = {}
        for key in (
            "psnr_noisy",
            "psnr_baseline",
            "psnr_denoised",
            "ssim_noisy",
            "ssim_baseline",
            "ssim_denoised",
        ):
            values = getattr(self, key)
            out[key] = None if values is None else round(float(np.mean(values)), 4)
        return out

    def to_json(self) -> dict[str, Any]:
        """A summary without the arrays: the corruption and, with a clean reference, the
        mean figures and the gains of the denoised inputs over the noisy ones and the baseline."""
        summary: dict[str, Any] = {
            "n": int(len(self.noisy)),
            "shape": list(self.noisy.shape[1:]),
            "kind": "image" if self.is_image else "flat",
        }
        if self.params is not None:
            summary.update(self.params.model_dump())
        if self.clean is None:
            return summary
        m = self.means()
        summary.update(m)
        summary["baseline"] = self.baseline_name
        summary["psnr_gain_vs_noisy"] = round(m["psnr_denoised"] - m["psnr_noisy"], 4)
        summary["psnr_gain_vs_baseline"] = round(m["psnr_denoised"] - m["psnr_baseline"], 4)
        if m["ssim_denoised"] is not None:
            summary["ssim_gain_vs_noisy"] = round(m["ssim_denoised"] - m["ssim_noisy"], 4)
            summary["ssim_gain_vs_baseline"] = round(m["ssim_denoised"] - m["ssim_baseline"], 4)
        return summary


# -- figures --------------------------------------------------------------------------------
def psnr(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-sample PSNR in dB of ``a`` against ``b`` for values in [0, 1] (capped at 100 dB)."""
    a64 = np.asarray(a, np.float64).reshape(len(a), -1)
    b64 = np.asarray(b, np.float64).reshape(len(b), -1)
    mse = np.mean((a64 - b64) ** 2, axis=1)
    with np.errstate(divide="ignore"):
        out = 10.0 * np.log10(1.0 / np.maximum(mse, 10 ** (-MAX_PSNR / 10)))
    return out.astype(np.float32)


def _pad(x: Any, p: int) -> Any:
    import torch.nn.functional as F

    mode = "reflect" if min(x.shape[-2:]) > p else "replicate"
    return F.pad(x, (p, p, p, p), mode=mode)


def ssim(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-sample SSIM of images ``a`` against ``b`` ((N, C, H, W), values in [0, 1]).

    The local means, variances and covariance are taken in a 7×7 Gaussian window (σ = 1.5),
    per channel, with the borders reflected so every pixel counts — small enough for 8×8
    digits; the SSIM map is averaged over pixels and channels."""
    import torch
    import torch.nn.functional as F

    x = torch.as_tensor(np.asarray(a, np.float64))
    y = torch.as_tensor(np.asarray(b, np.float64))
    channels = x.shape[1]
    r = torch.arange(SSIM_SIZE, dtype=torch.float64) - SSIM_SIZE // 2
    g = torch.exp(-(r**2) / (2 * SSIM_SIGMA**2))
    g = g / g.sum()
    window = (g[:, None] * g[None, :]).expand(channels, 1, SSIM_SIZE, SSIM_SIZE).contiguous()

    def blur(t: Any) -> Any:
        return F.conv2d(_pad(t, SSIM_SIZE // 2), window, groups=channels)

    mx, my = blur(x), blur(y)
    vx = blur(x * x) - mx * mx
    vy = blur(y * y) - my * my
    cov = blur(x * y) - mx * my
    smap = ((2 * mx * my + SSIM_C1) * (2 * cov + SSIM_C2)) / (
        (mx * mx + my * my + SSIM_C1) * (vx + vy + SSIM_C2)
    )
    return smap.flatten(1).mean(1).numpy().astype(np.float32)


def blur3(x: np.ndarray) -> np.ndarray:
    """A 3×3 mean filter on each channel of images (N, C, H, W), borders reflected."""
    import torch
    import torch.nn.functional as F

    t = torch.as_tensor(np.asarray(x, np.float32))
    return F.avg_pool2d(_pad(t, 1), 3, stride=1).numpy()


# -- the core -------------------------------------------------------------------------------
def corrupt(x_clean: np.ndarray, params: DenoiseParams) -> np.ndarray:
    """Seeded corruption of clean inputs (on the CPU, so every device gives the same noise),
    clipped to [0, 1] like the data."""
    import torch

    from ..losses import corrupt as corrupt_tensor

    gen = torch.Generator()
    gen.manual_seed(params.seed)
    x = torch.as_tensor(np.asarray(x_clean, np.float32))
    noisy = corrupt_tensor(x, params.corruption, params.noise, 0.0, params.fraction, gen)
    return noisy.clamp(0, 1).numpy()


def denoise(
    model: Any, x_clean: np.ndarray, params: DenoiseParams, batch_size: int = 1024
) -> DenoiseResult:
    """Corrupt clean inputs, denoise them with the model, and score noisy, blurred and denoised
    against the clean: PSNR per sample, and SSIM for images."""
    SPEC.require(model)
    clean = check_batch(model, x_clean, "The data")
    noisy = corrupt(clean, params)
    denoised = reconstruct(model, noisy, batch_size)
    image = clean.ndim == 4
    baseline = blur3(noisy) if image else noisy
    result = DenoiseResult(
        noisy=noisy,
        denoised=denoised,
        clean=clean,
        baseline=baseline,
        baseline_name="3x3 mean filter"
        if image
        else "the noisy input (flat data: nothing to blur)",
        params=params,
        psnr_noisy=psnr(noisy, clean),
        psnr_denoised=psnr(denoised, clean),
        psnr_baseline=psnr(baseline, clean),
    )
    if image:
        result.ssim_noisy = ssim(noisy, clean)
        result.ssim_denoised = ssim(denoised, clean)
        result.ssim_baseline = ssim(baseline, clean)
    return result


def denoise_inputs(model: Any, x_noisy: np.ndarray, batch_size: int = 1024) -> DenoiseResult:
    """Denoise inputs that are noisy already (scaled like the data); with no clean reference
    there is no PSNR."""
    SPEC.require(model)
    noisy = check_batch(model, x_noisy, "The input")
    return DenoiseResult(noisy=noisy, denoised=reconstruct(model, noisy, batch_size))


# -- files ----------------------------------------------------------------------------------
def write(result: DenoiseResult, out: Path, force: bool = False) -> list[Path]:
    """Write the denoised samples: images as one .png (a single image) or a folder of PNGs,
    any samples as .npy (the denoised array) or .npz (noisy, denoised and clean), atomically."""
    out = Path(out)
    check_out(out, force)
    x = result.denoised
    suffix = out.suffix.lower()
    if suffix not in ("", ".png", ".npy", ".npz"):
        raise ApplicationError(
            f"Write denoised samples to a .png file or a folder (images), or a .npy or .npz "
            f"file, not {out.name}."
        )
    if suffix in ("", ".png") and x.ndim != 4:
        raise ApplicationError(
            "These samples are flat vectors, not images: write them to a .npy or .npz file."
        )
    if suffix == ".png" and len(x) != 1:
        raise ApplicationError(
            f"{len(x)} denoised images do not fit in one .png file; name a folder instead."
        )
    with atomic_output(out, force, folder=suffix == "") as tmp:
        if suffix == "":
            write_pngs(x, tmp)
        elif suffix == ".png":
            write_png(x[0], tmp)
        elif suffix == ".npy":
            save_npy(tmp, x)
        else:
            arrays = {"noisy": result.noisy, "denoised": x}
            if result.clean is not None:
                arrays["clean"] = result.clean
            with open(tmp, "wb") as fh:
                np.savez_compressed(fh, **arrays)
    return written(out)


def read_input(path: Path, model: Any, scaling: dict | None) -> np.ndarray:
    """Already-noisy inputs from a .npy (scaled like the data) or, for an image model, a PNG or
    JPEG (mapped to [0, 1] like ``aelab infer`` does)."""
    return read_npy_or_image(
        path,
        model,
        scaling,
        wrong_kind=f"Input must be a .npy file or a PNG/JPEG image, not '{path.name}'.",
    )


# -- the command ----------------------------------------------------------------------------
def _text(summary: dict[str, Any]) -> str:
    """The summary as aligned ``name value`` lines."""
    strength = (
        f"sigma {summary['noise']:g}"
        if summary["corruption"] == "gaussian"
        else f"fraction {summary['fraction']:g}"
    )
    rows = [
        ("run", summary["run"]),
        ("data", f"{summary['data']} ({summary['n']} samples)"),
        ("corruption", f"{summary['corruption']}, {strength}, seed {summary['seed']}"),
    ]
    if summary.get("psnr_denoised") is not None:
        rows += [
            ("PSNR noisy", f"{summary['psnr_noisy']:.2f} dB"),
            ("PSNR baseline", f"{summary['psnr_baseline']:.2f} dB ({summary['baseline']})"),
            ("PSNR denoised", f"{summary['psnr_denoised']:.2f} dB"),
            (
                "PSNR gain",
                f"{summary['psnr_gain_vs_noisy']:+.2f} dB vs noisy, "
                f"{summary['psnr_gain_vs_baseline']:+.2f} dB vs baseline",
            ),
        ]
        if summary.get("ssim_denoised") is not None:
            rows += [
                (
                    "SSIM",
                    f"noisy {summary['ssim_noisy']:.3f}, baseline {summary['ssim_baseline']:.3f}, "
                    f"denoised {summary['ssim_denoised']:.3f}",
                ),
                (
                    "SSIM gain",
                    f"{summary['ssim_gain_vs_noisy']:+.3f} vs noisy, "
                    f"{summary['ssim_gain_vs_baseline']:+.3f} vs baseline",
                ),
            ]
    if summary.get("out"):
        rows.append(("written to", f"{summary['out']} ({summary['files']} file(s))"))
    return aligned(rows)


def cmd_denoise(args: argparse.Namespace) -> int:
    """``aelab denoise RUN [INPUT] [--data FILE] [--corruption ...] [--out OUT] [--json]``."""
    from ..runs import load_run

    out = check_command(
        args,
        "Pass either INPUT (already-noisy inputs to denoise) or --data (clean data to "
        "corrupt and score), not both.",
    )
    params = SPEC.validate_params(
        {
            "corruption": args.corruption,
            "noise": args.noise,
            "fraction": args.fraction,
            "seed": args.seed,
        }
    )
    run = load_run(args.run)
    SPEC.require(run.model)
    if args.input:
        x = read_input(Path(args.input), run.model, run.data_meta.get("scaling"))
        result = denoise_inputs(run.model, x)
        summary = {"run": run.run_id, "input": args.input, **result.to_json()}
    else:
        x, name = clean_samples(args, run)
        result = denoise(run.model, x, params)
        summary = {"run": run.run_id, "data": name, **result.to_json()}
    files = write(result, out, args.force) if out is not None else []
    summary.update({"out": args.out, "files": len(files)})
    if args.input:
        where = f"; written to {args.out} ({len(files)} file(s))" if args.out else ""
        text = f"Denoised {summary['n']} input(s) from {args.input} with {run.run_id}{where}."
        print_summary(summary, args.json, lambda: text)
    else:
        print_summary(summary, args.json, lambda: _text(summary))
    return 0


def add_command(sub: argparse._SubParsersAction) -> None:
    """Add ``aelab denoise``."""
    s = sub.add_parser(
        "denoise",
        help="denoise inputs with a model, or measure its PSNR/SSIM gain on corrupted data",
        description="Without INPUT: corrupt clean samples (the run's held-out part, or --data), "
        "denoise them and print PSNR (and SSIM for images) of noisy, blurred and denoised "
        "against clean. With INPUT (already-noisy .npy scaled like the data, or a PNG/JPEG "
        "for an image model): denoise it.",
    )
    s.add_argument("run", help="run id (or folder)")
    s.add_argument("input", nargs="?", help="already-noisy inputs: a .npy, or a PNG/JPEG image")
    s.add_argument("--data", help="clean data to corrupt (default: the run's held-out part)")
    s.add_argument("--corruption", choices=["gaussian", "mask", "salt_pepper"], default="gaussian")
    s.add_argument("--noise", type=float, default=0.3, help="sigma of gaussian noise (0.3)")
    s.add_argument(
        "--fraction", type=float, default=0.3, help="share hit by mask/salt_pepper (0.3)"
    )
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("-n", type=int, default=256, help="how many clean samples to score (256)")
    add_image_size(s)
    s.add_argument(
        "--out",
        help="denoised output: a .png (one image) or a folder (PNG images), or a .npy (the "
        "array) or .npz (noisy, denoised, clean)",
    )
    add_force_json(s)
    s.set_defaults(func=cmd_denoise)


SPEC = ApplicationSpec(
    id="denoise",
    name="Denoising",
    description="Cleans noisy inputs with the model and measures the PSNR and SSIM gain over "
    "the noisy input and a blur baseline.",
    params=DenoiseParams,
    run=lambda model, data, params: denoise(model, data.x, params),
    needs=frozenset({"reconstruct"}),
    cli=add_command,
    panel="aelab.ui.panels.denoise:build",
    help=HELP,
)


@hookimpl
def register_applications(register):
    """Register denoising."""
    register(SPEC)
