"""Losses, input corruption and penalties shared by the models: each formula written once.

``aelab.blocks`` re-exports the ones the reconstruction autoencoders use (``reconstruction_loss``,
``corrupt`` and the penalties), so plugins importing those from ``aelab.blocks`` keep working.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def reconstruction_loss(
    logits: torch.Tensor, x: torch.Tensor, loss: str, output: str = "sigmoid"
) -> torch.Tensor:
    """Mean per-value reconstruction error of the decoded output against x.

    With a sigmoid output the logits are squashed first (BCE works on the logits directly, which
    is numerically stable); with a linear output the logits are the reconstruction.
    """
    if output == "linear":
        return F.mse_loss(logits, x)
    if loss == "bce":
        return F.binary_cross_entropy_with_logits(logits, x)
    return F.mse_loss(torch.sigmoid(logits), x)


def gaussian_noise(
    x: torch.Tensor, std: float, mean: float = 0.0, generator: torch.Generator | None = None
) -> torch.Tensor:
    """x + ε with ε ~ N(mean, std²)."""
    eps = torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)
    return x + mean + std * eps


def mask_noise(
    x: torch.Tensor, fraction: float, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Sets a random ``fraction`` of the values to zero (masking noise)."""
    u = torch.rand(x.shape, generator=generator, dtype=x.dtype, device=x.device)
    return x * (u >= fraction)


def salt_and_pepper(
    x: torch.Tensor, fraction: float, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Sets a random ``fraction`` of the values to 0 or 1, with equal chance (salt and pepper)."""
    u = torch.rand(x.shape, generator=generator, dtype=x.dtype, device=x.device)
    salt = torch.rand(x.shape, generator=generator, dtype=x.dtype, device=x.device) < 0.5
    hit = u < fraction
    return torch.where(hit, salt.to(x.dtype), x)


def corrupt(
    x: torch.Tensor,
    kind: str,
    std: float = 0.0,
    mean: float = 0.0,
    fraction: float = 0.0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Corrupts ``x`` by ``gaussian`` noise N(mean, std²), ``mask`` or ``salt_pepper`` noise."""
    if kind == "mask":
        return mask_noise(x, fraction, generator)
    if kind == "salt_pepper":
        return salt_and_pepper(x, fraction, generator)
    return gaussian_noise(x, std, mean, generator)


# Sparsity penalties are means over code units (not sums), like the per-value reconstruction
# error, so a weight keeps its meaning whatever the code size.
def l1_penalty(z: torch.Tensor) -> torch.Tensor:
    """Mean |zⱼ| over the batch and the code units (the L1 sparsity penalty on activations)."""
    return z.abs().mean()


def kl_sparsity(z: torch.Tensor, rho: float, eps: float = 1e-6) -> torch.Tensor:
    """Mean over units of KL(ρ ‖ ρ̂ⱼ), ρ̂ⱼ being unit j's mean activation (in (0, 1)) over the batch."""
    rho_hat = z.mean(dim=0).clamp(eps, 1 - eps)
    return (
        rho * torch.log(rho / rho_hat) + (1 - rho) * torch.log((1 - rho) / (1 - rho_hat))
    ).mean()


def jacobian_frobenius_sq(
    f: nn.Module | object, x: torch.Tensor, create_graph: bool = False
) -> torch.Tensor:
    """Per-sample ‖∂f(x)/∂x‖²_F by autograd, one backward pass per code unit.

    Also under ``torch.no_grad`` (validation): the gradients it needs are taken locally, and no
    graph is kept for the result then.
    """
    create_graph = create_graph and torch.is_grad_enabled()
    with torch.enable_grad():
        x = x.detach().requires_grad_(True) if not x.requires_grad else x
        z = f(x)  # type: ignore[operator]
        total = torch.zeros(x.shape[0], dtype=x.dtype, device=x.device)
        for j in range(z.shape[1]):
            (g,) = torch.autograd.grad(
                z[:, j].sum(), x, create_graph=create_graph, retain_graph=True
            )
            total = total + g.pow(2).flatten(1).sum(1)
    return total if create_graph else total.detach()


def sigmoid_jacobian_sq(h: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Exact per-sample ‖J‖²_F of h = sigmoid(Wx + b): Σⱼ (hⱼ(1−hⱼ))² Σᵢ Wⱼᵢ²."""
    return ((h * (1 - h)) ** 2 * weight.pow(2).sum(dim=1)).sum(dim=1)


def kl_to_standard_normal(mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """Per-sample KL(N(mean, exp(logvar)) ‖ N(0, I)) = ½ Σ (μ² + σ² − log σ² − 1)."""
    return 0.5 * (mean.pow(2) + logvar.exp() - logvar - 1).sum(dim=1)


def discriminator_loss(
    real_logit: torch.Tensor, fake_logit: torch.Tensor, smoothing: float = 0.0
) -> torch.Tensor:
    """BCE of a discriminator telling real (label 1 − smoothing, one-sided smoothing) from fake (0)."""
    real = F.binary_cross_entropy_with_logits(
        real_logit, torch.full_like(real_logit, 1.0 - smoothing)
    )
    fake = F.binary_cross_entropy_with_logits(fake_logit, torch.zeros_like(fake_logit))
    return real + fake


def generator_loss(fake_logit: torch.Tensor) -> torch.Tensor:
    """The non-saturating generator loss −log D(G(z)): strong gradients while D still wins."""
    return F.binary_cross_entropy_with_logits(fake_logit, torch.ones_like(fake_logit))
