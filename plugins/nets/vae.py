"""The network of the VAE (torch), imported by the model's first build.

Its spec, parameters and help are in ``aelab_plugins.vae``, which lists the model without
importing torch."""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from aelab_plugins import vae as _settings  # INITIAL_LOGVAR: read at build, so it can be patched
from aelab_plugins.vae import VAEParams
from torch import nn

from aelab.blocks import interpolate_codes, mlp
from aelab.losses import kl_to_standard_normal
from aelab.models import GraphSpec, Model


class _Stats(nn.Module):
    """Exports the encoder's two outputs, mean and log-variance."""

    def __init__(self, model: VAE):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.model.encode_stats(x)


class VAE(Model):
    """MLP encoder to (mean, log-variance), reparameterised sampling, MLP decoder."""

    capabilities = frozenset({"encode", "decode", "reconstruct", "sample"})

    def __init__(self, params: VAEParams, sample_shape: tuple[int, ...]):
        super().__init__(params, sample_shape)
        self.n_in = math.prod(sample_shape)
        widths = params.widths()
        c = self.condition_size(params)
        body = mlp([self.n_in + c, *widths], nn.ReLU)
        self.body = nn.Sequential(body, nn.ReLU()) if widths else nn.Identity()
        hidden = widths[-1] if widths else self.n_in + c
        self.mean = nn.Linear(hidden, params.code_size)
        self.logvar = nn.Linear(hidden, params.code_size)
        # Every posterior starts narrow (σ = e⁻² ≈ 0.14), so the decoder gets informative codes
        # from the first step; with σ = 1 it first sees noise, learns to ignore z and the code
        # collapses before it is ever used (measured: benchmarks/results/collapse.md).
        if _settings.INITIAL_LOGVAR is not None:
            nn.init.zeros_(self.logvar.weight)
            nn.init.constant_(self.logvar.bias, _settings.INITIAL_LOGVAR)
        self.decoder = mlp([params.code_size + c, *reversed(widths), self.n_in], nn.ReLU)

    @staticmethod
    def condition_size(params: VAEParams) -> int:
        """Extra one-hot inputs of encoder and decoder (none; the conditional VAE has some)."""
        return 0

    def encode_stats(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and log-variance of q(z|x) (x already carries the one-hot label when conditional)."""
        h = self.body(x.reshape(x.shape[0], -1))
        return self.mean(h), self.logvar(h)

    def posterior(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and log-variance of q(z|x) for a batch (what the collapse diagnostics read)."""
        return self.encode_stats(batch["x"])

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The mean code: deterministic, what reconstruct and export use."""
        return self.encode_stats(x)[0]

    def decode_logits(self, z: torch.Tensor) -> torch.Tensor:
        """Decoder output before the sigmoid, in the data's shape."""
        return self.decoder(z).reshape(z.shape[0], *self.sample_shape)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        # Sigmoid before the reshape, so onnxruntime fuses it into the last Gemm.
        return torch.sigmoid(self.decoder(z)).reshape(z.shape[0], *self.sample_shape)

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        z = torch.randn(
            n, self.params.code_size, generator=generator, device=self.mean.weight.device
        )
        with torch.no_grad():
            return self.decode(z)

    def interpolate(self, x1: torch.Tensor, x2: torch.Tensor, steps: int = 8) -> torch.Tensor:
        """Outputs decoded along the straight line between the mean codes of two inputs."""
        return interpolate_codes(self, x1, x2, steps)

    def elbo_terms(
        self, x: torch.Tensor, enc_in: torch.Tensor, cond: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        """Per-batch mean reconstruction and KL terms, with z drawn by reparameterisation."""
        mean, logvar = self.encode_stats(enc_in)
        z = mean + torch.exp(0.5 * logvar) * self.randn_like(mean)
        logits = self.decode_logits(z if cond is None else torch.cat([z, cond], dim=1))
        if self.params.loss == "bce":
            rec = F.binary_cross_entropy_with_logits(logits, x, reduction="none")
        else:
            rec = (torch.sigmoid(logits) - x).pow(2)
        recon = rec.flatten(1).sum(1).mean()
        # Per sample and unit, (batch, code_size): the formula summed over a singleton axis.
        kl_units = kl_to_standard_normal(mean.unsqueeze(1), logvar.unsqueeze(1))
        kl = kl_units.sum(1).mean()
        return {
            "reconstruction": recon,
            "kl": kl,
            "loss": recon + self.kl_weight() * self.kl_penalty(kl_units),
        }

    def likelihood_inputs(
        self, batch: dict[str, torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """(x, the encoder's input, the decoder's condition) of a batch."""
        return batch["x"], batch["x"], None

    def likelihood_note(self) -> str | None:
        """Why this VAE has no likelihood to estimate, or None (a Bernoulli decoder has one)."""
        if self.params.loss != "bce":
            return (
                "This VAE was trained with the mse loss, which fixes no decoder likelihood; "
                "train it with loss bce for an NLL estimate."
            )
        return None

    def log_weights(
        self, batch: dict[str, torch.Tensor], k: int, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """log p(x|z) + log p(z) − log q(z|x) for k draws z ~ q(z|x) per sample, (N, k): the
        importance weights of the IWAE bound (their mean over k is the ELBO). p(x|z) is the
        Bernoulli decoder the BCE loss trains."""
        x, enc_in, cond = self.likelihood_inputs(batch)
        mean, logvar = self.encode_stats(enc_in)
        n, d = mean.shape
        eps = torch.randn((k, n, d), generator=generator, dtype=mean.dtype, device=mean.device)
        z = mean + torch.exp(0.5 * logvar) * eps  # (k, n, d)
        flat = z.reshape(k * n, d)
        if cond is not None:
            flat = torch.cat([flat, cond.repeat(k, 1)], dim=1)
        logits = self.decode_logits(flat)
        target = x.unsqueeze(0).expand(k, *x.shape).reshape(k * n, *x.shape[1:])
        log_px = -F.binary_cross_entropy_with_logits(logits, target, reduction="none")
        log_px = log_px.reshape(k, n, -1).sum(-1)
        log_2pi = math.log(2 * math.pi)
        log_pz = -0.5 * (z.pow(2) + log_2pi).sum(-1)
        log_qz = -0.5 * (eps.pow(2) + log_2pi + logvar.unsqueeze(0)).sum(-1)
        return (log_px + log_pz - log_qz).T

    def kl_penalty(self, kl_units: torch.Tensor) -> torch.Tensor:
        """The KL term as trained: with free bits, each unit's batch-mean KL counts as at least
        λ nats while training (Kingma et al. 2016); the true KL when evaluating."""
        lam = self.params.free_bits
        if not self.training or lam <= 0:
            return kl_units.sum(1).mean()
        return kl_units.mean(0).clamp(min=lam).sum()

    def kl_weight(self) -> float:
        """β, ramped up over the warm-up steps while training (β itself when evaluating)."""
        warmup = self.params.kl_warmup_steps
        if not self.training or warmup == 0 or self.global_step >= warmup:
            return self.params.beta
        return self.params.beta * (self.global_step + 1) / warmup

    def noisy(self, x: torch.Tensor) -> torch.Tensor:
        """The encoder's input during training: x plus Gaussian noise at the noise level."""
        if self.training and self.params.noise > 0:
            return x + self.params.noise * self.randn_like(x)
        return x

    def training_step(self, batch: dict[str, torch.Tensor], optimizer: str) -> dict[str, Any]:
        x = batch["x"]
        return self.elbo_terms(x, self.noisy(x))

    def validation_step(self, batch: dict[str, torch.Tensor]) -> dict[str, Any]:
        terms = self.training_step(batch, "model")
        terms["elbo"] = -(terms["reconstruction"] + terms["kl"])
        terms["total"] = terms.pop("loss")
        return terms

    def graphs(self) -> list[GraphSpec]:
        graphs = super().graphs()
        for g in graphs:
            if g.role == "encoder":
                g.module, g.output_names = _Stats(self), ["mean", "logvar"]
        return graphs
