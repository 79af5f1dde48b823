"""Inpainting: hide part of each sample (a rectangle of an image, or random values), fill it in
with the model by iterative projection, and measure the error inside the hidden part against
simple fills (``aelab inpaint``). On flat data this is imputation of missing values."""

from __future__ import annotations

import argparse
import csv
import math
from collections.abc import Callable
from dataclasses import dataclass, field
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
    image_shape,
    load_npy,
    print_summary,
    reconstruct,
)
from .output import atomic_output, check_out, save_npy, write_png, write_pngs, written

HELP = """\
**How it works.** Part of each sample is hidden: a **rectangle** of an image (its position and
size given as fractions of the width and height, so `0.25, 0.25, 0.5, 0.5` is the centre
quarter — 4×4 pixels of an 8×8 digit) or a **random** share of the values (pixels of an image,
features of flat data: on a table this is imputation of missing values). The hole starts with an
initial fill (the per-value mean of the training data, by default), then **iterative
projection** repeats two steps: reconstruct the whole sample with the model, and paste the known
values back over the reconstruction,

  x₍ₜ₊₁₎ = m ⊙ x_known + (1 − m) ⊙ g(f(xₜ)),   m = 1 where the value is known.

The known values never change; only the hole is rewritten, each time by what the model finds
most plausible around the known part. A VAE is used in eval mode, with its mean code.

**Which iterate is kept.** An autoencoder's reconstruction is not an exact projection, so the
fill can drift after the first few steps towards a blurry or a different digit. With
**consistent** (the default) each sample keeps the iterate whose *reconstruction agrees best
with its known values* — a check that needs no ground truth — while **last** keeps the final
iterate (plain projection). The curve of in-mask PSNR per iteration shows the drift.

**Reading it.** Errors are measured **inside the hole only** (the known values are copied, so
counting them would flatter every method): MSE over all hidden values, and PSNR = 10·log₁₀(1 /
MSE) in dB for values in [0, 1] — higher is better, +3 dB halves the squared error. Two simple
fills are measured the same way: the **per-value mean** of the training data, and, for images,
**neighbour diffusion** (each hidden pixel repeatedly set to the mean of its four neighbours
until it settles); the gain is the model against the better of them.

**What to expect.** Small holes and scattered missing values are where a model shines: on
held-out digits an autoencoder beats the better simple fill by about 2.3 dB for the centre
quarter and 2.8 dB for 30% random pixels. When half an image is gone the gain shrinks to about
half a dB: the per-value mean is the squared-error-optimal guess without context. Imputation
needs features that depend on each other — 64 pixels of a flattened digit do, while one of the
swiss roll's three coordinates is barely predictable from the other two, and there the mean
wins. A rectangle needs images; flat data takes a random mask. Missing values already marked
NaN in a .npy, empty cells of a CSV, or transparent pixels of a PNG are filled where they are.
"""

MaskKind = Literal["auto", "rect", "random"]
InitKind = Literal["mean", "neighbours", "value"]
SelectKind = Literal["consistent", "last"]
MAX_PSNR = 100.0  # dB, for a perfect match (the squared error is 0)
DIFFUSION_SWEEPS = 500  # at most, for the neighbour-diffusion fill
BASELINE_MEAN = "per-value mean"
BASELINE_NEIGHBOURS = "neighbour diffusion"


class InpaintParams(AppParams):
    """Which part to hide, how to start the fill, how many projection steps."""

    mask: MaskKind = Field(
        "auto",
        title="Mask",
        description="rect hides a rectangle of each image; random hides a share of the values "
        "(pixels of an image, features of flat data); auto is rect for images, random for flat "
        "data.",
    )
    rect_x: float = Field(
        0.25,
        ge=0.0,
        le=1.0,
        title="Rectangle left",
        description="Left edge of the hidden rectangle, as a fraction of the image width.",
    )
    rect_y: float = Field(
        0.25,
        ge=0.0,
        le=1.0,
        title="Rectangle top",
        description="Top edge of the hidden rectangle, as a fraction of the image height.",
    )
    rect_w: float = Field(
        0.5,
        gt=0.0,
        le=1.0,
        title="Rectangle width",
        description="Width of the hidden rectangle, as a fraction of the image width.",
    )
    rect_h: float = Field(
        0.5,
        gt=0.0,
        le=1.0,
        title="Rectangle height",
        description="Height of the hidden rectangle, as a fraction of the image height.",
    )
    fraction: float = Field(
        0.3,
        ge=0.01,
        le=0.95,
        title="Hidden fraction",
        description="Share of the values hidden by a random mask, drawn anew for each sample.",
    )
    seed: int = Field(
        0,
        ge=0,
        le=2**31 - 1,
        title="Seed",
        description="The same seed hides the same values (and picks the same samples).",
    )
    iterations: int = Field(
        20,
        ge=0,
        le=500,
        title="Iterations",
        description="Projection steps: reconstruct, then paste the known values back; 0 keeps "
        "the initial fill.",
    )
    init: InitKind = Field(
        "mean",
        title="Initial fill",
        description="What the hole starts from: the per-value mean of the training data, "
        "neighbour diffusion (images only), or a constant value.",
    )
    init_value: float = Field(
        0.5,
        ge=0.0,
        le=1.0,
        title="Initial value",
        description="The constant the hole starts from when the initial fill is value.",
    )
    select: SelectKind = Field(
        "consistent",
        title="Keep",
        description="consistent keeps, for each sample, the iterate whose reconstruction best "
        "matches its known values; last keeps the final iterate (plain projection).",
    )


@dataclass
class InpaintResult:
    """Samples with a hole, the model's fill and the simple fills; with the original known, the
    error inside the hole for each."""

    masked: np.ndarray  # the samples with NaN where hidden
    hidden: np.ndarray  # bool, the samples' shape: True where the value was hidden
    filled: np.ndarray  # the model's fill (known values unchanged)
    original: np.ndarray | None = None  # the samples before masking, when known
    params: InpaintParams | None = None
    mask_kind: str = ""  # rect | random | given (NaN or transparent pixels in the input)
    baselines: dict[str, np.ndarray] = field(default_factory=dict)  # name -> filled array
    kept_iteration: np.ndarray | None = None  # per sample: which iterate was kept
    mse_by_iteration: list[float] | None = None  # in-mask MSE of iterate 0..T (plain path)
    reference: str = ""  # where the per-value mean came from

    @property
    def is_image(self) -> bool:
        """Whether the samples are (C, H, W) images."""
        return self.filled.ndim == 4

    def mse(self, filled: np.ndarray) -> float | None:
        """MSE over the hidden values of all samples, against the original (None without it)."""
        if self.original is None:
            return None
        return in_mask_mse(filled, self.original, self.hidden)

    def scores(self) -> dict[str, dict[str, float]]:
        """In-mask MSE and PSNR of the model and of each simple fill (empty without original)."""
        if self.original is None:
            return {}
        out = {}
        for name, arr in [("model", self.filled), *self.baselines.items()]:
            m = self.mse(arr)
            out[name] = {"mse": round(m, 6), "psnr": round(psnr_of(m), 4)}
        return out

    def best_baseline(self) -> str | None:
        """The simple fill with the lower in-mask error (None without the original)."""
        scores = self.scores()
        names = [n for n in scores if n != "model"]
        return min(names, key=lambda n: scores[n]["mse"]) if names else None

    def psnr_by_iteration(self) -> list[float] | None:
        """In-mask PSNR of each iterate of plain projection (iterate 0 is the initial fill)."""
        if self.mse_by_iteration is None:
            return None
        return [round(psnr_of(m), 4) for m in self.mse_by_iteration]

    def to_json(self) -> dict[str, Any]:
        """A summary without the arrays: the mask, the settings and, with the original known,
        the in-mask MSE and PSNR of the model and the simple fills."""
        n = len(self.filled)
        summary: dict[str, Any] = {
            "n": int(n),
            "shape": list(self.filled.shape[1:]),
            "kind": "image" if self.is_image else "flat",
            "mask": self.mask_kind,
            "hidden_fraction": round(float(self.hidden.mean()), 4),
        }
        if self.params is not None:
            p = self.params.model_dump()
            summary.update(
                {k: p[k] for k in ("iterations", "init", "select", "seed")},
            )
            if p["init"] == "value":
                summary["init_value"] = p["init_value"]
            if self.mask_kind == "rect":
                summary["rect"] = [p["rect_x"], p["rect_y"], p["rect_w"], p["rect_h"]]
            elif self.mask_kind == "random":
                summary["fraction"] = p["fraction"]
        summary["reference"] = self.reference
        if self.kept_iteration is not None:
            summary["mean_kept_iteration"] = round(float(np.mean(self.kept_iteration)), 2)
        scores = self.scores()
        if not scores:
            return summary
        best = self.best_baseline()
        summary.update(
            {
                "mse_model": scores["model"]["mse"],
                "psnr_model": scores["model"]["psnr"],
                "baseline": best,
                "mse_baseline": scores[best]["mse"],
                "psnr_baseline": scores[best]["psnr"],
                "psnr_gain_vs_baseline": round(scores["model"]["psnr"] - scores[best]["psnr"], 4),
                "baselines": {k: v for k, v in scores.items() if k != "model"},
                "psnr_by_iteration": self.psnr_by_iteration(),
            }
        )
        return summary


# -- figures --------------------------------------------------------------------------------
def in_mask_mse(a: np.ndarray, b: np.ndarray, hidden: np.ndarray) -> float:
    """Mean squared difference over the hidden values only (all samples pooled)."""
    sel = np.asarray(hidden, bool)
    if not sel.any():
        return 0.0
    diff = np.asarray(a, np.float64)[sel] - np.asarray(b, np.float64)[sel]
    return float(np.mean(diff**2))


def psnr_of(mse: float) -> float:
    """PSNR in dB of a mean squared error for values in [0, 1], capped at 100 dB."""
    return float(10.0 * math.log10(1.0 / max(mse, 10 ** (-MAX_PSNR / 10))))


# -- masks ----------------------------------------------------------------------------------
def resolve_kind(params: InpaintParams, sample_shape: tuple[int, ...]) -> str:
    """rect or random: auto picks rect for images and random for flat data."""
    image = len(sample_shape) == 3
    kind = params.mask if params.mask != "auto" else ("rect" if image else "random")
    if kind == "rect" and not image:
        raise ApplicationError(
            f"A rect mask needs images, but these samples are flat vectors of "
            f"{sample_shape[0]} values with no rows or columns; use a random mask (e.g. "
            "random:0.3) to hide a share of the values."
        )
    return kind


def rect_bounds(params: InpaintParams, height: int, width: int) -> tuple[int, int, int, int]:
    """The hidden rectangle in pixels, (top, bottom, left, right), at least one pixel."""
    left = min(int(round(params.rect_x * width)), width - 1)
    top = min(int(round(params.rect_y * height)), height - 1)
    right = min(width, left + max(1, int(round(params.rect_w * width))))
    bottom = min(height, top + max(1, int(round(params.rect_h * height))))
    return top, bottom, left, right


def make_mask(shape: tuple[int, ...], params: InpaintParams) -> tuple[np.ndarray, str]:
    """The hidden values of a batch of ``shape`` ((N, C, H, W) or (N, D)) and the mask kind:
    one rectangle for every image, or a seeded random share per sample (whole pixels of an
    image, all channels together)."""
    n, sample = shape[0], tuple(shape[1:])
    kind = resolve_kind(params, sample)
    if kind == "rect":
        _, height, width = sample
        top, bottom, left, right = rect_bounds(params, height, width)
        if (bottom - top) * (right - left) == height * width:
            raise ApplicationError(
                "The rectangle covers the whole image, so nothing is left to fill it from; make "
                "it smaller than the image."
            )
        hidden = np.zeros(shape, bool)
        hidden[:, :, top:bottom, left:right] = True
        return hidden, kind
    positions = sample[1] * sample[2] if len(sample) == 3 else sample[0]
    k = int(round(params.fraction * positions))
    k = max(1, min(k, positions - 1)) if positions > 1 else 1  # keep one value known
    rng = np.random.default_rng(params.seed)
    order = np.argsort(rng.random((n, positions)), axis=1)[:, :k]
    flat = np.zeros((n, positions), bool)
    np.put_along_axis(flat, order, True, axis=1)
    if len(sample) == 3:
        hidden = np.broadcast_to(flat.reshape(n, 1, *sample[1:]), shape).copy()
    else:
        hidden = flat
    return hidden, kind


# -- fills ----------------------------------------------------------------------------------
def value_mean(reference: np.ndarray | None, x: np.ndarray, hidden: np.ndarray) -> np.ndarray:
    """The per-value mean (one value per pixel or feature): of the reference data when given,
    else of the samples' own known values (0.5 where nothing is known)."""
    if reference is not None and len(reference):
        return np.asarray(reference, np.float64).mean(axis=0).astype(np.float32)
    known = np.where(hidden, np.nan, np.asarray(x, np.float64))
    count = (~hidden).sum(axis=0)
    total = np.nansum(known, axis=0)
    return np.where(count > 0, total / np.maximum(count, 1), 0.5).astype(np.float32)


def diffuse(x: np.ndarray, hidden: np.ndarray, start: np.ndarray, sweeps: int = DIFFUSION_SWEEPS):
    """Neighbour diffusion: each hidden pixel set to the mean of its four neighbours (borders
    replicated), repeated from ``start`` until it settles or ``sweeps`` run out."""
    cur = np.where(hidden, start, x).astype(np.float32)
    for _ in range(sweeps):
        p = np.pad(cur, ((0, 0), (0, 0), (1, 1), (1, 1)), mode="edge")
        avg = (p[:, :, :-2, 1:-1] + p[:, :, 2:, 1:-1] + p[:, :, 1:-1, :-2] + p[:, :, 1:-1, 2:]) / 4
        nxt = np.where(hidden, avg, x)
        change = float(np.max(np.abs(nxt - cur))) if cur.size else 0.0
        cur = nxt
        if change < 1e-5:
            break
    return cur


def _known_mse(r: np.ndarray, x: np.ndarray, known: np.ndarray) -> np.ndarray:
    """Per sample: mean squared difference over the known values (0 where none is known)."""
    n = len(x)
    k = known.reshape(n, -1)
    d = (np.where(known, r - x, 0.0).reshape(n, -1).astype(np.float64)) ** 2
    return d.sum(axis=1) / np.maximum(k.sum(axis=1), 1)


# -- the core -------------------------------------------------------------------------------
def inpaint(
    model: Any,
    x: np.ndarray,
    hidden: np.ndarray | None,
    params: InpaintParams,
    reference: np.ndarray | None = None,
    *,
    reference_name: str = "",
    mask_kind: str = "given",
    batch_size: int = 1024,
    progress: Callable[[float, str], None] | None = None,
) -> InpaintResult:
    """Fill the ``hidden`` values of ``x`` (None: its NaN values) by iterative projection.

    ``reference`` is data the per-value mean is taken from (the training data); without it the
    samples' own known values are used. When ``x`` holds real values under the mask they are the
    original, and the in-mask error of the model and of the simple fills is measured."""
    SPEC.require(model)
    x = check_batch(model, x, "The input", nan_ok=True)
    if hidden is None:
        hidden = np.isnan(x)
    hidden = np.asarray(hidden, bool)
    if hidden.shape == x.shape[1:]:
        hidden = np.broadcast_to(hidden, x.shape)
    if hidden.shape != x.shape:
        raise ApplicationError(
            f"The mask has shape {list(hidden.shape)}, but the input has {list(x.shape)}."
        )
    if np.isnan(x[~hidden]).any():
        raise ApplicationError("The input holds NaN outside the hidden part.")
    if not hidden.any():
        raise ApplicationError("Nothing is hidden, so there is nothing to fill.")
    image = x.ndim == 4
    if params.init == "neighbours" and not image:
        raise ApplicationError(
            "The neighbours fill needs images; flat data has no neighbours, so start from the "
            "mean or a value."
        )
    original = x.copy() if np.isfinite(x).all() else None
    known_x = np.where(hidden, 0.0, np.nan_to_num(x)).astype(np.float32)
    mean = np.broadcast_to(value_mean(reference, known_x, hidden), x.shape)
    baselines = {BASELINE_MEAN: np.where(hidden, mean, known_x).astype(np.float32)}
    if image:
        baselines[BASELINE_NEIGHBOURS] = diffuse(known_x, hidden, mean)
    if params.init == "mean":
        start = baselines[BASELINE_MEAN]
    elif params.init == "neighbours":
        start = baselines[BASELINE_NEIGHBOURS]
    else:
        start = np.where(hidden, np.float32(params.init_value), known_x).astype(np.float32)

    known = ~hidden
    cur = start
    history = [in_mask_mse(cur, original, hidden)] if original is not None else None
    best, best_err = cur.copy(), np.full(len(x), np.inf)
    kept = np.zeros(len(x), np.int64)
    steps = params.iterations
    for t in range(steps + 1):
        if params.select == "last" and t == steps:
            break
        recon = reconstruct(model, cur, batch_size)
        if params.select == "consistent":
            err = _known_mse(recon, known_x, known)
            better = err < best_err
            best[better], best_err[better], kept[better] = cur[better], err[better], t
        if t == steps:
            break
        cur = np.where(hidden, recon, known_x).astype(np.float32)
        if history is not None:
            history.append(in_mask_mse(cur, original, hidden))
        if progress is not None:
            progress((t + 1) / steps, f"projection step {t + 1} of {steps}")
    if params.select == "last":
        best, kept = cur, np.full(len(x), steps, np.int64)
    return InpaintResult(
        masked=np.where(hidden, np.nan, known_x).astype(np.float32),
        hidden=hidden,
        filled=best.astype(np.float32),
        original=original,
        params=params,
        mask_kind=mask_kind,
        baselines=baselines,
        kept_iteration=kept,
        mse_by_iteration=history,
        reference=reference_name
        or ("the training data" if reference is not None else "the input's known values"),
    )


def inpaint_samples(
    model: Any,
    x: np.ndarray,
    params: InpaintParams,
    reference: np.ndarray | None = None,
    **kwargs: Any,
) -> InpaintResult:
    """Hide part of complete samples with the mask of ``params``, fill it, and score the fill
    inside the hole against the samples themselves."""
    SPEC.require(model)
    x = check_batch(model, x, "The data", nan_ok=True)
    if np.isnan(x).any():
        raise ApplicationError(
            "The data holds NaN values; to fill them where they are, pass it as INPUT without "
            "a mask."
        )
    hidden, kind = make_mask(x.shape, params)
    return inpaint(model, x, hidden, params, reference, mask_kind=kind, **kwargs)


# -- files ----------------------------------------------------------------------------------
MISSING = {"", "nan", "na", "n/a", "null", "none", "?"}


def _unscale(x: np.ndarray, scaling: dict | None) -> np.ndarray:
    """Values in [0, 1] back to the units of the raw data (the inverse of the run's scaling)."""
    scaling = scaling or {}
    method = scaling.get("method", "none")
    x = np.asarray(x, np.float64)
    if method == "divide":
        return x * float(scaling["scale"])
    if method == "minmax":
        lo = np.asarray(scaling["min"], np.float64)
        hi = np.asarray(scaling["max"], np.float64)
        return lo + x * np.where(hi > lo, hi - lo, 1.0)
    return x


def read_csv_input(path: Path, n_features: int) -> tuple[np.ndarray, list[str] | None]:
    """A CSV of raw values, one sample per row, with an optional header; empty cells and
    NaN/NA/? mark missing values (returned as NaN)."""
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            rows = [r for r in csv.reader(fh) if any(c.strip() for c in r)]
    except UnicodeDecodeError:
        raise ApplicationError(f"{path} is not UTF-8 text; save the CSV file as UTF-8.") from None
    except csv.Error as exc:
        raise ApplicationError(f"{path} cannot be parsed as CSV ({exc}).") from None

    def number(cell: str) -> float | None:
        text = cell.strip()
        if text.lower() in MISSING:
            return math.nan
        try:
            return float(text)
        except ValueError:
            return None

    header = None
    if rows and any(number(c) is None for c in rows[0]):
        header, rows = [c.strip() for c in rows[0]], rows[1:]
    if not rows:
        raise ApplicationError(f"{path} holds no rows of values.")
    out = np.empty((len(rows), n_features), np.float64)
    for i, row in enumerate(rows):
        if len(row) != n_features:
            raise ApplicationError(
                f"{path}: row {i + 1 + (header is not None)} has {len(row)} columns, but the "
                f"model takes {n_features} values per sample; leave out any label column."
            )
        for j, cell in enumerate(row):
            v = number(cell)
            if v is None:
                raise ApplicationError(
                    f"{path}: row {i + 1 + (header is not None)}, column {j + 1} holds "
                    f"{cell.strip()!r}, which is not a number (leave a cell empty when missing)."
                )
            out[i, j] = v
    return out, header


def _read_png(path: Path, shape: tuple[int, ...], scaling: dict | None):
    """An image as one (1, C, H, W) sample, and its hole where the PNG is transparent (None
    when it has no transparent pixel)."""
    from PIL import Image, UnidentifiedImageError

    from ..cli_export import read_image

    x = read_image(path, shape, {"scaling": scaling or {}})
    try:
        with Image.open(path) as img:
            has_alpha = img.mode in ("RGBA", "LA", "PA") or "transparency" in img.info
            alpha = img.convert("RGBA").getchannel("A") if has_alpha else None
            if alpha is not None and alpha.size != (shape[2], shape[1]):
                alpha = alpha.resize((shape[2], shape[1]), Image.Resampling.NEAREST)
    except (OSError, UnidentifiedImageError) as exc:
        raise ApplicationError(f"{path} is not a readable PNG or JPEG image ({exc}).") from None
    if alpha is None:
        return x, None
    hole = np.asarray(alpha) < 128
    if not hole.any():
        return x, None
    hidden = np.broadcast_to(hole[None, None], x.shape).copy()
    return np.where(hidden, np.float32(np.nan), x), hidden  # what lies under is unknown


@dataclass
class Input:
    """Samples read from INPUT, scaled like the data, with their hole when the file marks one."""

    x: np.ndarray
    hidden: np.ndarray | None  # NaN values or transparent pixels; None: the --mask decides
    header: list[str] | None = None  # a CSV's column names


def read_input(path: Path, model: Any, scaling: dict | None) -> Input:
    """Samples from a .npy (scaled like the data; NaN marks missing values), a CSV (raw values
    like the training CSV; empty cells are missing) or, for an image model, a PNG/JPEG
    (transparent pixels are the hole)."""
    from ..cli_export import IMAGE_SUFFIXES
    from ..data import apply_scaling

    if not path.is_file():
        raise ApplicationError(f"No input file at {path}.")
    shape = tuple(model.sample_shape)
    suffix = path.suffix.lower()
    if suffix == ".npy":
        x = load_npy(path)
        if not np.issubdtype(x.dtype, np.number):
            raise ApplicationError(f"{path} holds {x.dtype} values, not numbers.")
        x = check_batch(model, x, "The input", nan_ok=True)
        return Input(x, np.isnan(x) if np.isnan(x).any() else None)
    if suffix == ".csv":
        if len(shape) != 1:
            raise ApplicationError(
                f"This model works on images of shape {list(shape)}; pass a .npy file or a "
                "PNG/JPEG image, not a CSV."
            )
        raw, header = read_csv_input(path, shape[0])
        x = apply_scaling(raw, scaling or {})  # NaN stays NaN
        return Input(x, np.isnan(x) if np.isnan(x).any() else None, header)
    if suffix in IMAGE_SUFFIXES:
        image_shape(model, "pass a .npy or CSV file.")
        x, hole = _read_png(path, shape, scaling)
        return Input(x, hole)
    raise ApplicationError(
        f"Input must be a .npy or CSV file or a PNG/JPEG image, not '{path.name}'."
    )


def write(
    result: InpaintResult,
    out: Path,
    force: bool = False,
    scaling: dict | None = None,
    header: list[str] | None = None,
) -> list[Path]:
    """Write the filled samples atomically: images as one .png or a folder of PNGs; any samples
    as .npy (the filled array, scaled like the data) or .npz (masked with NaN, filled, mask,
    and the original when known); flat samples also as CSV, in the raw units of the data."""
    out = Path(out)
    check_out(out, force)
    x = result.filled
    suffix = out.suffix.lower()
    if suffix not in ("", ".png", ".npy", ".npz", ".csv"):
        raise ApplicationError(
            f"Write filled samples to a .png file or a folder (images), a .npy or .npz file, or "
            f"a .csv file (flat data), not {out.name}."
        )
    if suffix in ("", ".png") and x.ndim != 4:
        raise ApplicationError(
            "These samples are flat vectors, not images: write them to a .npy, .npz or .csv file."
        )
    if suffix == ".csv" and x.ndim != 2:
        raise ApplicationError("A CSV holds flat samples; write images to .png, a folder or .npy.")
    if suffix == ".png" and len(x) != 1:
        raise ApplicationError(
            f"{len(x)} filled images do not fit in one .png file; name a folder instead."
        )
    with atomic_output(out, force, folder=suffix == "") as tmp:
        if suffix == "":
            write_pngs(x, tmp)
        elif suffix == ".png":
            write_png(x[0], tmp)
        elif suffix == ".npy":
            save_npy(tmp, x)
        elif suffix == ".csv":
            names = header or [f"x{i}" for i in range(x.shape[1])]
            with open(tmp, "w", newline="", encoding="utf-8") as fh:
                writer = csv.writer(fh)
                writer.writerow(names)
                writer.writerows([[f"{v:.7g}" for v in row] for row in _unscale(x, scaling)])
        else:
            arrays = {"masked": result.masked, "filled": x, "mask": result.hidden}
            if result.original is not None:
                arrays["original"] = result.original
            with open(tmp, "wb") as fh:
                np.savez_compressed(fh, **arrays)
    return written(out)


# -- the command ----------------------------------------------------------------------------
def parse_mask(text: str | None) -> dict[str, Any]:
    """``rect``, ``rect:X,Y,W,H`` (fractions), ``random``, ``random:F`` or ``auto`` as
    parameters (validated later against their bounds)."""
    if text is None:
        return {}
    kind, _, rest = text.strip().partition(":")
    kind = kind.strip().lower()
    bad = ApplicationError(
        f"--mask must be rect:X,Y,W,H (left, top, width, height as fractions of the image, e.g. "
        f"rect:0.25,0.25,0.5,0.5) or random:F (the share hidden, e.g. random:0.3), not {text!r}."
    )
    try:
        values = [float(v) for v in rest.split(",")] if rest.strip() else []
    except ValueError:
        raise bad from None
    if kind == "rect" and len(values) in (0, 4):
        keys = ("rect_x", "rect_y", "rect_w", "rect_h")
        return {"mask": "rect", **dict(zip(keys, values))}
    if kind == "random" and len(values) in (0, 1):
        return {"mask": "random", **({"fraction": values[0]} if values else {})}
    if kind == "auto" and not values:
        return {"mask": "auto"}
    raise bad


def _reference(run: Any) -> tuple[np.ndarray | None, str]:
    """The run's training part (for the per-value mean), or None when it cannot be reloaded."""
    from ..data import load_run_data
    from ..errors import AelabError

    if not run.data_meta.get("source"):
        return None, ""
    try:
        train, _ = load_run_data(run.data_meta, run.config.val_fraction, run.config.seed)
    except AelabError:
        return None, ""
    if tuple(train.sample_shape) != tuple(run.model.sample_shape):
        return None, ""
    return train.x, f"{train.name} (the run's training part)"


def _text(summary: dict[str, Any]) -> str:
    """The summary as aligned ``name value`` lines."""
    where = summary.get("data") or summary.get("input")
    if summary["mask"] == "rect":
        mask = "rect " + ",".join(f"{v:g}" for v in summary["rect"])
    elif summary["mask"] == "random":
        mask = f"random {summary['fraction']:g}, seed {summary['seed']}"
    else:
        mask = "given by the input (NaN values or transparent pixels)"
    rows = [
        ("run", summary["run"]),
        ("data", f"{where} ({summary['n']} samples)"),
        ("mask", f"{mask}; {summary['hidden_fraction']:.1%} of the values hidden"),
        (
            "fill",
            f"{summary['iterations']} projection step(s) from the {summary['init']} fill, "
            f"keeping the {summary['select']} iterate",
        ),
    ]
    if summary.get("psnr_model") is not None:
        rows.append(("in-mask PSNR", f"model {summary['psnr_model']:.2f} dB"))
        for name, s in summary["baselines"].items():
            rows.append(("", f"{name} {s['psnr']:.2f} dB (MSE {s['mse']:.4f})"))
        rows.append(
            (
                "gain",
                f"{summary['psnr_gain_vs_baseline']:+.2f} dB vs {summary['baseline']} "
                f"(model MSE {summary['mse_model']:.4f})",
            )
        )
    if summary.get("out"):
        rows.append(("written to", f"{summary['out']} ({summary['files']} file(s))"))
    return aligned(rows)


def cmd_inpaint(args: argparse.Namespace) -> int:
    """``aelab inpaint RUN [INPUT] [--data FILE] [--mask SPEC] [--iterations N] [--out OUT]``."""
    from ..runs import load_run

    out = check_command(
        args,
        "Pass either INPUT (samples to fill) or --data (complete data to mask and score), "
        "not both.",
    )
    values: dict[str, Any] = {
        **parse_mask(args.mask),
        "iterations": args.iterations,
        "init": args.init,
        "init_value": args.init_value,
        "select": args.select,
        "seed": args.seed,
    }
    params = SPEC.validate_params(values)
    run = load_run(args.run)
    SPEC.require(run.model)
    scaling = run.data_meta.get("scaling")
    reference, ref_name = _reference(run)
    header = None
    if args.input:
        given = read_input(Path(args.input), run.model, scaling)
        header = given.header
        if given.hidden is not None:
            if args.mask is not None:
                raise ApplicationError(
                    f"{args.input} marks its own missing values (NaN or transparent pixels); "
                    "leave out --mask, or pass a file without them."
                )
            result = inpaint(
                run.model, given.x, given.hidden, params, reference, reference_name=ref_name
            )
        else:
            result = inpaint_samples(run.model, given.x, params, reference, reference_name=ref_name)
        summary = {"run": run.run_id, "input": args.input, **result.to_json()}
    else:
        x, name = clean_samples(args, run)
        result = inpaint_samples(run.model, x, params, reference, reference_name=ref_name)
        summary = {"run": run.run_id, "data": name, **result.to_json()}
    files = write(result, out, args.force, scaling, header) if out is not None else []
    summary.update({"out": args.out, "files": len(files)})
    print_summary(summary, args.json, lambda: _text(summary))
    return 0


def add_command(sub: argparse._SubParsersAction) -> None:
    """Add ``aelab inpaint``."""
    s = sub.add_parser(
        "inpaint",
        help="fill a hidden part of images (or missing values of flat data) with a model",
        description="Without INPUT: hide part of complete samples (the run's held-out part, or "
        "--data), fill it by iterative projection and print the in-mask MSE and PSNR of the "
        "model against simple fills. With INPUT (a .npy scaled like the data, a CSV of raw "
        "values, or a PNG/JPEG for an image model): fill its NaN values, empty CSV cells or "
        "transparent pixels, else the --mask; write the result with --out.",
    )
    s.add_argument("run", help="run id (or folder)")
    s.add_argument("input", nargs="?", help="samples to fill: a .npy, a CSV, or a PNG/JPEG image")
    s.add_argument("--data", help="complete data to mask and score (default: the run's held-out)")
    s.add_argument(
        "--mask",
        help="rect:X,Y,W,H (fractions of the image: left, top, width, height; default "
        "rect:0.25,0.25,0.5,0.5) or random:F (share hidden; default for flat data random:0.3)",
    )
    s.add_argument("--iterations", type=int, default=20, help="projection steps (20)")
    s.add_argument(
        "--init", choices=["mean", "neighbours", "value"], default="mean", help="initial fill"
    )
    s.add_argument("--init-value", type=float, default=0.5, help="constant for --init value")
    s.add_argument(
        "--select",
        choices=["consistent", "last"],
        default="consistent",
        help="keep the iterate most consistent with the known values, or the last one",
    )
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("-n", type=int, default=1000, help="how many samples to score (1000)")
    add_image_size(s)
    s.add_argument(
        "--out",
        help="filled output: a .png (one image) or a folder (PNG images), a .npy (the array), "
        ".npz (masked, filled, mask, original) or .csv (flat data, raw units)",
    )
    add_force_json(s)
    s.set_defaults(func=cmd_inpaint)


def _run(model: Any, data: Any, params: InpaintParams, **context: Any) -> InpaintResult:
    """The seam's entry: mask ``data`` and fill it (``reference``: the training data)."""
    return inpaint_samples(model, data.x, params, context.get("reference"))


SPEC = ApplicationSpec(
    id="inpaint",
    name="Inpainting",
    description="Hides part of each sample (a rectangle or random values), fills it in with "
    "the model by iterative projection, and measures the error inside the hole against "
    "simple fills.",
    params=InpaintParams,
    run=_run,
    needs=frozenset({"reconstruct"}),
    cli=add_command,
    panel="aelab.ui.panels.inpaint:build",
    help=HELP,
)


@hookimpl
def register_applications(register):
    """Register inpainting."""
    register(SPEC)
