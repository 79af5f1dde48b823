"""What a trained model learned, as plain numbers and pictures (torch, numpy, sklearn; no UI).

The lab turns these into plots and images, and the CLI or a notebook can call them directly.
Every image function returns an ``(H, W, 3)`` uint8 array.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

# Layer types worth listing in an architecture summary; activations are folded into their layer.
_SIZED = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.ConvTranspose2d)


@dataclass
class Architecture:
    """A built model's layers, parameter count and how its code compares with the input."""

    layers: list[tuple[str, str, int]]  # (module path, "in → out", parameters)
    n_params: int
    input_size: int
    code_size: int
    completeness: str  # undercomplete | overcomplete | complete | generator (cannot encode)
    notes: list[str] = field(default_factory=list)
    code_kind: str = "continuous"  # what the model declares its code is (models.CODE_KINDS)

    def markdown(self) -> str:
        """A short markdown summary: a layer table and one sentence on the code size."""
        rows = ["| layer | size | parameters |", "|---|---|---:|"]
        rows += [f"| `{name}` | {size} | {n:,} |" for name, size, n in self.layers]
        if self.completeness == "generator":
            head = (
                f"**{self.n_params:,} parameters.** The generator turns {self.code_size} input "
                f"units (noise, plus the label for a conditional model) into {self.input_size} "
                "values; this model does not encode data on its own, so under- or overcomplete "
                "does not apply."
            )
            return "\n\n".join([head, *self.notes, "\n".join(rows)])
        ratio = self.code_size / max(self.input_size, 1)
        kind = CODE_KIND_TEXT.get(self.code_kind, "")
        if kind:
            head = (
                f"**{self.n_params:,} parameters.** Input {self.input_size} values → a "
                f"**{self.code_kind}** code of {self.code_size} units ({ratio:.2g}× the input): "
                f"{kind}"
            )
            return "\n\n".join([head, *self.notes, "\n".join(rows)])
        verdict = {
            "undercomplete": "the code is smaller than the input, so the model must compress",
            "overcomplete": "the code is larger than the input, so only a regulariser "
            "(noise, sparsity, a contractive or KL penalty) stops it from learning to copy",
            "complete": "the code is as large as the input, so without a regulariser it could "
            "learn to copy",
        }[self.completeness]
        head = (
            f"**{self.n_params:,} parameters.** Input {self.input_size} values → code "
            f"{self.code_size} units ({ratio:.2g}× the input): **{self.completeness}**; {verdict}."
        )
        return "\n\n".join([head, *self.notes, "\n".join(rows)])


# How a code that is not a plain real vector limits what it carries; its size alone does not.
CODE_KIND_TEXT = {
    "sparse": "only a few units are active for each input, so the sparsity, not the number of "
    "units, limits what the code can carry; it may be larger than the input.",
    "binary": "each unit is one bit, so the code carries at most that many bits, far less "
    "than as many real numbers.",
    "discrete": "each unit is an index into a learned codebook, so the code carries a few bits "
    "per unit, far less than as many real numbers.",
}


def _layer_size(module: nn.Module) -> str:
    if isinstance(module, nn.Linear):
        return f"{module.in_features} → {module.out_features}"
    k = "×".join(str(s) for s in module.kernel_size)  # type: ignore[attr-defined]
    return f"{module.in_channels} → {module.out_channels} channels, kernel {k}"  # type: ignore[attr-defined]


def architecture(model: nn.Module) -> Architecture:
    """Summarise a built model: sized layers in order, parameter count, under/overcomplete."""
    layers = []
    for name, module in model.named_modules():
        if isinstance(module, _SIZED):
            n = sum(p.numel() for p in module.parameters(recurse=False))
            layers.append((name, _layer_size(module), n))
    n_params = sum(p.numel() for p in model.parameters())
    input_size = int(math.prod(getattr(model, "sample_shape", ()) or (0,)))
    code_size = int(math.prod(getattr(model, "code_shape", ()) or (0,)))
    if "encode" not in getattr(model, "capabilities", frozenset({"encode"})):
        completeness = "generator"
    elif code_size < input_size:
        completeness = "undercomplete"
    elif code_size > input_size:
        completeness = "overcomplete"
    else:
        completeness = "complete"
    notes: list[str] = []
    kind = str(getattr(model, "code_kind", "continuous"))
    return Architecture(layers, n_params, input_size, code_size, completeness, notes, kind)


# -- running the model ---------------------------------------------------------------------
def _tensor(x: np.ndarray, model: nn.Module) -> torch.Tensor:
    device = next(model.parameters()).device if any(True for _ in model.parameters()) else "cpu"
    return torch.as_tensor(np.asarray(x, dtype=np.float32), device=device)


@torch.no_grad()
def encode(model: Any, x: np.ndarray, batch_size: int = 1024) -> np.ndarray:
    """Codes of ``x`` as a flat (N, code) float array, in eval mode."""
    was = model.training
    model.eval()
    out = [
        model.encode(_tensor(x[i : i + batch_size], model)).reshape(len(x[i : i + batch_size]), -1)
        for i in range(0, len(x), batch_size)
    ]
    model.train(was)
    return torch.cat(out).cpu().numpy() if out else np.zeros((0, 0), np.float32)


@torch.no_grad()
def reconstruct(model: Any, x: np.ndarray) -> np.ndarray:
    """Deterministic reconstructions of ``x`` (eval mode: no noise, the mean code)."""
    was = model.training
    model.eval()
    out = model.reconstruct(_tensor(x, model)).cpu().numpy()
    model.train(was)
    return out


def corrupt(model: Any, x: np.ndarray, seed: int = 0) -> np.ndarray | None:
    """The training-time corruption of ``x`` (seeded), or None for a model without noise."""
    level = float(getattr(getattr(model, "params", None), "noise", 0.0) or 0.0)
    if level <= 0 or not hasattr(model, "corrupt"):
        return None
    # A private generator: drawing a picture must not shift a running training's noise.
    xt = _tensor(x, model)
    gen = torch.Generator(device=xt.device)
    gen.manual_seed(seed)
    with torch.no_grad():
        return model.corrupt(xt, generator=gen).clamp(0, 1).cpu().numpy()


@dataclass
class Projection:
    """2-D coordinates of codes, how they were made, and the labels that colour them."""

    xy: np.ndarray  # (N, 2)
    method: str  # direct | pca | tsne
    labels: np.ndarray | None
    explained: float | None = None  # share of variance the PCA axes keep


def project(codes: np.ndarray, method: str = "auto", seed: int = 0) -> Projection:
    """Project codes to 2-D: directly for 2 units, else PCA (or t-SNE when asked)."""
    codes = np.asarray(codes, dtype=np.float64).reshape(len(codes), -1)
    d = codes.shape[1]
    if method == "auto":
        method = "direct" if d <= 2 else "pca"
    if d <= 2 or method == "direct":
        xy = codes[:, :2] if d >= 2 else np.column_stack([codes[:, 0], np.zeros(len(codes))])
        return Projection(xy.astype(np.float32), "direct", None)
    if method == "tsne":
        from sklearn.manifold import TSNE  # late import: sklearn is slow to import

        perplexity = float(min(30, max(2, (len(codes) - 1) // 3)))
        xy = TSNE(2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(codes)
        return Projection(xy.astype(np.float32), "tsne", None)
    from sklearn.decomposition import PCA

    pca = PCA(2, random_state=seed).fit(codes)
    return Projection(
        pca.transform(codes).astype(np.float32),
        "pca",
        None,
        float(pca.explained_variance_ratio_.sum()),
    )


def latent_map(
    model: Any, x: np.ndarray, labels: np.ndarray | None, method: str = "auto", seed: int = 0
) -> Projection:
    """Encode ``x`` and project its codes to 2-D, carrying the labels along."""
    proj = project(encode(model, x), method, seed)
    proj.labels = None if labels is None else np.asarray(labels)
    return proj


@torch.no_grad()
def interpolate(model: Any, x1: np.ndarray, x2: np.ndarray, steps: int = 8) -> np.ndarray:
    """Decoded points on the line between the codes of two inputs, ends included."""
    if steps < 2:
        raise ValueError("an interpolation needs at least 2 steps")
    model.eval()
    a, b = _tensor(np.asarray(x1)[None], model), _tensor(np.asarray(x2)[None], model)
    if hasattr(model, "interpolate"):  # a model may know a better path (a VAE uses its means)
        return model.interpolate(a[0], b[0], steps).cpu().numpy()
    za, zb = model.encode(a), model.encode(b)
    t = torch.linspace(0, 1, steps, device=za.device).reshape(-1, *([1] * (za.dim() - 1)))
    return model.decode(za + t * (zb - za)).cpu().numpy()


@torch.no_grad()
def samples(model: Any, n: int = 16, seed: int = 0) -> np.ndarray:
    """``n`` seeded samples from the model's prior."""
    model.eval()
    # On the model's device: torch draws CUDA noise only from a CUDA generator.
    device = next(iter(model.parameters()), torch.empty(0)).device
    gen = torch.Generator(device=device)
    gen.manual_seed(seed)
    return model.sample(n, generator=gen).cpu().numpy()


@dataclass
class PCABaseline:
    """PCA with as many components as the model's code, fitted on the training data."""

    components: int
    mse: float
    reconstructions: np.ndarray
    explained: float


def pca_baseline(x_train: np.ndarray, x_test: np.ndarray, components: int) -> PCABaseline:
    """Fit PCA on ``x_train`` and reconstruct ``x_test`` through ``components`` components."""
    from sklearn.decomposition import PCA

    flat_train = np.asarray(x_train, np.float64).reshape(len(x_train), -1)
    flat_test = np.asarray(x_test, np.float64).reshape(len(x_test), -1)
    k = int(max(1, min(components, flat_train.shape[1], len(flat_train))))
    pca = PCA(k, random_state=0).fit(flat_train)
    recon = pca.inverse_transform(pca.transform(flat_test))
    mse = float(np.mean((recon - flat_test) ** 2))
    shaped = np.clip(recon, 0, 1).astype(np.float32).reshape(x_test.shape)
    return PCABaseline(k, mse, shaped, float(pca.explained_variance_ratio_.sum()))


def mse(a: np.ndarray, b: np.ndarray) -> float:
    """Mean squared difference of two equally shaped arrays."""
    return float(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2))


# -- pictures ------------------------------------------------------------------------------
def _tiles(batch: np.ndarray, cell: int) -> list[np.ndarray]:
    """Each sample as an (h, w, 3) uint8 tile: images as they are, flat vectors as a strip."""
    arr = np.clip(np.asarray(batch, dtype=np.float32), 0.0, 1.0)
    out = []
    for item in arr:
        if item.ndim == 3:  # (C, H, W)
            img = np.repeat(item, 3, axis=0) if item.shape[0] == 1 else item[:3]
            img = img.transpose(1, 2, 0)
        elif item.ndim == 2:
            img = np.repeat(item[:, :, None], 3, axis=2)
        else:  # a flat vector: one grey square per value, in a row
            img = np.repeat(item.reshape(1, -1, 1), 3, axis=2)
        h, w = img.shape[:2]
        scale = max(1, cell // max(h, w)) if item.ndim >= 2 else max(1, cell // max(w, 1))
        img = np.kron(img, np.ones((scale, scale, 1), dtype=np.float32)) if scale > 1 else img
        out.append((img * 255).round().astype(np.uint8))
    return out


def image_grid(
    rows: list[np.ndarray],
    labels: list[str] | None = None,
    cell: int = 48,
    pad: int = 2,
    names: list[str] | None = None,
    flat: str = "compare",
) -> np.ndarray:
    """Lay out batches as labelled rows of tiles; returns an (H, W, 3) uint8 image.

    Flat samples (tables, signals) are not tiles: with ``flat="compare"`` each sample gets a
    panel in which every row (original, reconstruction, ...) is a line over the features
    (``names``, when known); with ``flat="gallery"`` every sample of every row is a panel of its
    own. Labels are drawn with Pillow's built-in font, so keep them to plain ASCII.
    """
    from PIL import Image, ImageDraw, ImageFont

    if rows and all(np.asarray(r).ndim == 2 for r in rows):
        from . import charts

        if flat == "gallery":
            return charts.gallery(np.concatenate([np.asarray(r) for r in rows]), names=names)
        return charts.compare(rows, labels or [f"row {k + 1}" for k in range(len(rows))], names)

    tiled = [_tiles(r, cell) for r in rows]
    tile_h = max((t.shape[0] for row in tiled for t in row), default=cell)
    tile_w = max((t.shape[1] for row in tiled for t in row), default=cell)
    ncol = max((len(r) for r in tiled), default=1)
    try:
        font = ImageFont.load_default(size=14)
    except TypeError:  # Pillow < 10.1 has only the small bitmap font
        font = ImageFont.load_default()
    label_w = 0
    if labels:
        probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
        label_w = 8 + max(int(probe.textlength(text, font=font)) for text in labels)
    width = label_w + ncol * (tile_w + pad) + pad
    height = len(tiled) * (tile_h + pad) + pad
    canvas = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    for r, row in enumerate(tiled):
        y = pad + r * (tile_h + pad)
        if labels:
            draw.text((4, y + tile_h // 2 - 8), labels[r], fill=(30, 30, 30), font=font)
        for c, tile in enumerate(row):
            x = label_w + pad + c * (tile_w + pad)
            canvas.paste(Image.fromarray(tile), (x, y + (tile_h - tile.shape[0]) // 2))
    return np.asarray(canvas)


def reconstruction_grid(
    model: Any, x: np.ndarray, seed: int = 0, cell: int = 48, names: list[str] | None = None
) -> np.ndarray:
    """Rows of originals, corrupted inputs (when the model adds noise) and reconstructions;
    for flat data, a panel per sample with a line for each and the error per feature below."""
    rows, labels = [np.asarray(x)], ["original"]
    noisy = corrupt(model, x, seed)
    if noisy is not None:
        rows.append(noisy)
        labels.append("corrupted")
        rows.append(reconstruct(model, noisy))
        labels.append("denoised")
    else:
        rows.append(reconstruct(model, x))
        labels.append("reconstructed")
    if np.asarray(x).ndim == 2:
        from . import charts

        errors = np.mean((np.asarray(rows[-1]) - np.asarray(x)) ** 2, axis=0)
        return charts.compare(rows, labels, names, errors=errors)
    return image_grid(rows, labels, cell=cell)
