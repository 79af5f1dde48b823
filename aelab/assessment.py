"""What ``aelab eval`` reports: the literature's figures for a trained model on a dataset.

- Every model that reconstructs: per-element MSE, PSNR and (images) SSIM, and for data in [0, 1]
  the binary cross-entropy summed over a sample's elements, the unit VAE papers use. Each comes
  from a deterministic reconstruction: the posterior mean where the model has one.
- A model that declares a likelihood (``log_weights``, the VAEs): the ELBO and the importance-
  weighted bound on the negative log-likelihood of Burda et al. (IWAE) with K samples.
- A model that generates: the Fréchet distance between as many generated as real samples, in a
  named feature space (for the built-in digits a small classifier shipped with aelab; otherwise
  the principal components of the real samples).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

BATCH = 512
PCA_FEATURES = 32


def _batches(n: int, size: int = BATCH) -> range:
    return range(0, n, size)


@torch.no_grad()
def reconstruction_figures(model: Any, data: Any) -> dict[str, Any]:
    """MSE per element, PSNR, SSIM (images) and BCE summed per sample, over every sample."""
    from .apps.denoise import ssim

    model.eval()
    x_all = np.asarray(data.x, dtype=np.float32)
    sq = bce = 0.0
    ssims: list[np.ndarray] = []
    for i in _batches(len(x_all)):
        x = torch.as_tensor(x_all[i : i + BATCH])
        recon = model.reconstruct(x).float()
        sq += float((recon - x).pow(2).double().sum())
        r = recon.clamp(1e-7, 1 - 1e-7)
        bce += float(F.binary_cross_entropy(r, x, reduction="sum").double())
        if data.kind == "image":
            ssims.append(ssim(recon.numpy(), x.numpy()))
    n, per_sample = len(x_all), int(np.prod(x_all.shape[1:]))
    mse = sq / (n * per_sample)
    out: dict[str, Any] = {
        "mse": mse,
        "psnr": math.inf if mse == 0 else 10 * math.log10(1.0 / mse),
        "bce": bce / n,
        "reconstructed_from": "the posterior mean"
        if hasattr(model, "encode_stats")
        else "the code",
    }
    if ssims:
        out["ssim"] = float(np.concatenate(ssims).mean())
    return out


@torch.no_grad()
def likelihood_figures(model: Any, data: Any, k: int, seed: int = 0) -> dict[str, Any]:
    """The ELBO and the IWAE bound on −log p(x) with ``k`` samples, in nats per sample."""
    model.eval()
    g = torch.Generator().manual_seed(seed)
    fields = tuple(model.batch_fields)
    arrays = data.arrays()
    elbo = nll = 0.0
    n = len(data)
    size = max(1, BATCH // max(1, k // 8))  # k decoder passes per sample: smaller batches
    for i in _batches(n, size):
        batch = {
            f: torch.as_tensor(arrays[f][i : i + size], dtype=torch.long if f == "y" else None)
            for f in fields
        }
        logw = model.log_weights(batch, k, g)  # (batch, k)
        elbo += float(logw.mean(1).double().sum())
        nll -= float((torch.logsumexp(logw.double(), 1) - math.log(k)).sum())
    return {"elbo": elbo / n, "nll": nll / n, "nll_samples": k}


# -- sample quality ------------------------------------------------------------------------------


def _digits_features() -> tuple[Any, str]:
    """The shipped digits classifier's feature map, and its name."""
    from importlib import resources

    from safetensors.torch import load_file

    from .metrics import FeatureNet

    path = resources.files("aelab") / "assets" / "digits_features.safetensors"
    net = FeatureNet(64, 10)
    with resources.as_file(path) as file:
        net.load_state_dict(load_file(str(file)))
    net.eval()

    def features(x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return net.features(torch.as_tensor(x, dtype=torch.float32)).numpy()

    return features, "aelab's digits classifier (penultimate layer, 32 features)"


def _pca_features(real: np.ndarray) -> tuple[Any, str]:
    """Projection on the real samples' leading principal components."""
    flat = real.reshape(len(real), -1).astype(np.float64)
    mean = flat.mean(0)
    k = min(PCA_FEATURES, flat.shape[1], len(flat) - 1)
    _, _, vt = np.linalg.svd(flat - mean, full_matrices=False)
    basis = vt[:k]

    def features(x: np.ndarray) -> np.ndarray:
        return (x.reshape(len(x), -1) - mean) @ basis.T

    return features, f"the real samples' first {k} principal components"


def feature_space(data: Any, real: np.ndarray) -> tuple[Any, str]:
    """The named feature space of the Fréchet distance for this data."""
    if data.source == "builtin:digits" and tuple(data.sample_shape) == (1, 8, 8):
        return _digits_features()
    return _pca_features(real)


@torch.no_grad()
def sample_figures(model: Any, data: Any, n: int = 1000, seed: int = 0) -> dict[str, Any]:
    """Fréchet distance of ``n`` generated samples to ``n`` real ones (fewer when the data has
    fewer), with the feature space named."""
    from .metrics import frechet_distance

    model.eval()
    n = min(n, len(data))
    rng = np.random.default_rng(seed)
    real = np.asarray(data.x[rng.permutation(len(data))[:n]], dtype=np.float32)
    g = torch.Generator().manual_seed(seed)
    fake = model.sample(n, generator=g).float().cpu().numpy()
    features, name = feature_space(data, real)
    return {
        "fd": frechet_distance(features(fake), features(real)),
        "fd_samples": n,
        "fd_features": name,
    }


def likelihood_missing(model: Any) -> str | None:
    """Why the model has no likelihood to estimate (one sentence), or None when it has one."""
    if not callable(getattr(model, "log_weights", None)):
        return "This model declares no likelihood (only VAEs do), so it has no NLL estimate."
    return getattr(model, "likelihood_note", lambda: None)()


def assess(
    model: Any, data: Any, *, nll_samples: int = 0, fd_samples: int = 1000, seed: int = 0
) -> dict[str, Any]:
    """Every figure that applies to ``model``, on every sample of ``data``."""
    caps = set(getattr(model, "capabilities", ()))
    out: dict[str, Any] = {}
    if "reconstruct" in caps:
        out.update(reconstruction_figures(model, data))
    if nll_samples > 0:
        reason = likelihood_missing(model)
        if reason:
            out["nll_note"] = reason
        else:
            out.update(likelihood_figures(model, data, nll_samples, seed))
    if "sample" in caps and fd_samples > 0:
        out.update(sample_figures(model, data, fd_samples, seed))
    return out
