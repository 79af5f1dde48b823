"""Figures that show what makes each family what it is: PSNR, Jacobian norm, PCA baseline, and the
Fréchet distance of generated samples in the features of a small classifier."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .blocks import mlp
from .losses import jacobian_frobenius_sq


def psnr(estimate: torch.Tensor, clean: torch.Tensor, data_range: float = 1.0) -> float:
    """Peak signal-to-noise ratio in dB over the whole batch: 10·log10(range² / MSE)."""
    mse = float(F.mse_loss(estimate.float(), clean.float()))
    return math.inf if mse == 0 else 10.0 * math.log10(data_range**2 / mse)


def jacobian_norm(encode: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> float:
    """Mean over samples of the encoder's Jacobian Frobenius norm ‖∂f(x)/∂x‖_F (autograd)."""
    with torch.enable_grad():
        sq = jacobian_frobenius_sq(encode, x.detach().clone())
    return float(sq.detach().sqrt().mean())


def pca_mse(train_x: np.ndarray, test_x: np.ndarray, k: int) -> float:
    """Test mean squared error per value of PCA with ``k`` components fitted on the training data."""
    a = train_x.reshape(len(train_x), -1).astype(np.float64)
    b = test_x.reshape(len(test_x), -1).astype(np.float64)
    mean = a.mean(0)
    _, _, vt = np.linalg.svd(a - mean, full_matrices=False)
    basis = vt[: min(k, vt.shape[0])]
    recon = (b - mean) @ basis.T @ basis + mean
    return float(((recon - b) ** 2).mean())


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """‖μa − μb‖² + tr(Ca + Cb − 2 (Ca^½ Cb Ca^½)^½) between Gaussians fitted to two feature sets."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    mu_a, mu_b = a.mean(0), b.mean(0)
    ca, cb = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    # tr((Ca Cb)^½) through symmetric eigendecompositions, which stay real and stable.
    w, v = np.linalg.eigh(ca)
    root_a = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    inner = np.linalg.eigvalsh(root_a @ cb @ root_a)
    tr_sqrt = np.sqrt(np.clip(inner, 0, None)).sum()
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(ca) + np.trace(cb) - 2 * tr_sqrt)


class FeatureNet(nn.Module):
    """A small classifier of the dataset's labels; its penultimate layer gives the features."""

    def __init__(self, n_in: int, n_classes: int, width: int = 64, features: int = 32):
        super().__init__()
        self.body = nn.Sequential(mlp([n_in, width, features]), nn.ReLU())
        self.head = nn.Linear(features, n_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate-layer activations of flattened inputs."""
        return self.body(x.reshape(x.shape[0], -1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def train_feature_net(
    x: np.ndarray, labels: np.ndarray, epochs: int = 30, seed: int = 0
) -> FeatureNet:
    """Fit a FeatureNet on labelled data (seeded; a few seconds on digits)."""
    torch.manual_seed(seed)
    xt = torch.as_tensor(x, dtype=torch.float32)
    yt = torch.as_tensor(labels, dtype=torch.long)
    net = FeatureNet(int(np.prod(x.shape[1:])), int(labels.max()) + 1)
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        perm = torch.randperm(len(xt), generator=g)
        for i in range(0, len(xt), 64):
            idx = perm[i : i + 64]
            opt.zero_grad()
            F.cross_entropy(net(xt[idx]), yt[idx]).backward()
            opt.step()
    return net.eval()


@dataclass
class SampleQuality:
    """Fréchet distances to held-out real data: the model's, and the two references."""

    model: float
    real: float  # another real sample: the floor a perfect generator would reach
    noise: float  # uniform noise: the ceiling of a generator that learned nothing
    accuracy: float  # of the feature classifier on held-out data (features are meaningful)

    @property
    def relative(self) -> float:
        """Where the model sits between floor (0) and ceiling (1)."""
        return (self.model - self.real) / max(self.noise - self.real, 1e-12)


def sample_quality(
    sample: Callable[[int, torch.Generator], torch.Tensor],
    train_x: np.ndarray,
    train_labels: np.ndarray,
    test_x: np.ndarray,
    test_labels: np.ndarray | None = None,
    n: int = 300,
    seed: int = 0,
    net: FeatureNet | None = None,
) -> SampleQuality:
    """Fréchet distance between features of ``sample(n, generator)`` and held-out real data,
    with real training data (floor) and uniform noise (ceiling) measured the same way."""
    net = net or train_feature_net(train_x, train_labels, seed=seed)
    rng = np.random.default_rng(seed)
    ref = test_x[rng.permutation(len(test_x))[:n]]
    real = train_x[rng.permutation(len(train_x))[: len(ref)]]
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        fake = sample(len(ref), g).detach().cpu()
        noise = torch.rand((len(ref), *test_x.shape[1:]), generator=g)

        def feats(v: torch.Tensor | np.ndarray) -> np.ndarray:
            return net.features(torch.as_tensor(v, dtype=torch.float32)).numpy()

        f_ref = feats(ref)
        acc = float("nan")
        if test_labels is not None:
            pred = net(torch.as_tensor(test_x, dtype=torch.float32)).argmax(1).numpy()
            acc = float((pred == test_labels).mean())
        return SampleQuality(
            model=frechet_distance(feats(fake), f_ref),
            real=frechet_distance(feats(real), f_ref),
            noise=frechet_distance(feats(noise), f_ref),
            accuracy=acc,
        )
