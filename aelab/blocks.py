"""Shared building blocks: fully connected stacks, reconstruction losses, and the MLP autoencoder."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .models import Model
from .params import Params


def mlp(sizes: list[int], activation: type[nn.Module] | None = nn.ReLU) -> nn.Sequential:
    """Linear layers through ``sizes`` with an activation between them (none after the last)."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if activation is not None and i < len(sizes) - 2:
            layers.append(activation())
    return nn.Sequential(*layers)


def reconstruction_loss(logits: torch.Tensor, x: torch.Tensor, loss: str) -> torch.Tensor:
    """Mean per-value reconstruction error of sigmoid(logits) against x (BCE uses the logits)."""
    if loss == "bce":
        return F.binary_cross_entropy_with_logits(logits, x)
    return F.mse_loss(torch.sigmoid(logits), x)


def gaussian_noise(x: torch.Tensor, std: float, mean: float = 0.0) -> torch.Tensor:
    """x + ε with ε ~ N(mean, std²)."""
    return x + mean + std * torch.randn_like(x)


class MLPAutoencoder(Model):
    """Fully connected encoder narrowing to the code and a mirrored decoder with a sigmoid output.

    Subclasses change the activation, the corruption or add penalty terms; everything else is
    shared.
    """

    activation: type[nn.Module] | None = nn.ReLU
    code_activation: type[nn.Module] | None = None  # applied to the code (e.g. sigmoid for sparsity)

    def __init__(self, params: Params, sample_shape: tuple[int, ...]):
        super().__init__(params, sample_shape)
        self.n_in = math.prod(sample_shape)
        widths = params.widths()
        self.encoder = mlp([self.n_in, *widths, params.code_size], self.activation)
        self.decoder = mlp([params.code_size, *reversed(widths), self.n_in], self.activation)
        self.code_act = self.code_activation() if self.code_activation else nn.Identity()

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.code_act(self.encoder(x.reshape(x.shape[0], -1)))

    def decode_logits(self, z: torch.Tensor) -> torch.Tensor:
        """Decoder output before the sigmoid, in the data's shape."""
        return self.decoder(z).reshape(z.shape[0], *self.sample_shape)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.decode_logits(z))

    def corrupt(self, x: torch.Tensor) -> torch.Tensor:
        """Training-time corruption of the input (Gaussian noise at the noise level)."""
        return gaussian_noise(x, self.params.noise) if self.params.noise > 0 else x

    def penalty(self, x_in: torch.Tensor, z: torch.Tensor) -> dict[str, torch.Tensor]:
        """Extra loss terms on the code; none for the plain autoencoder."""
        return {}

    def training_step(self, x: torch.Tensor, optimizer: str) -> dict[str, torch.Tensor]:
        x_in = self.corrupt(x) if self.training else x
        z = self.encode(x_in)
        recon = reconstruction_loss(self.decode_logits(z), x, self.params.loss)
        terms = {"reconstruction": recon, **self.penalty(x_in, z)}
        terms["loss"] = sum(terms.values())
        return terms
