"""The variational autoencoder (and β-VAE): a probabilistic code with a prior to sample from."""

from __future__ import annotations

import math
from typing import Any, Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from aelab.blocks import interpolate_codes, mlp
from aelab.hookspecs import hookimpl
from aelab.losses import kl_to_standard_normal
from aelab.models import GraphSpec, Model, ModelSpec
from aelab.params import Params

HELP = """\
**How it works.** The encoder does not output one code but a Gaussian over codes,
q(z|x) = N(μ(x), diag σ²(x)), given by its mean μ and log-variance log σ². A code is drawn with the
**reparameterisation trick** z = μ + σ ⊙ ε, ε ~ N(0, I), so gradients flow through μ and σ; the
decoder maps z back to x̂. Training minimises the negative evidence lower bound (ELBO), per sample:

  L = reconstruction(x, x̂) + β · KL(q(z|x) ‖ N(0, I)),
  KL = ½ Σⱼ (μⱼ² + σⱼ² − log σⱼ² − 1)

with the reconstruction term summed over the values (binary cross-entropy, the Bernoulli
log-likelihood, or squared error, a Gaussian one). The test ELBO = −(reconstruction + KL) is
reported on held-out data (higher is better).

**β (β-VAE).** β = 1 is the plain VAE. β > 1 weighs the prior more: smoother, more disentangled
codes at the cost of blurrier reconstructions; β < 1 reconstructs better with a less regular code.
If the KL term falls to zero the code carries no information and every input decodes to the
same blur (posterior collapse; the lab warns below 1 nat). **Free bits** (on by default, λ = 1
nat per unit) count each unit's KL as at least λ while training, so the prior gains nothing by
shutting a unit off; every posterior also starts narrow (σ ≈ 0.14), so the decoder sees
informative codes from the first step. Together they keep the default VAE on digits from
collapsing within the default 10 epochs. A **KL warm-up** ramps β from 0 over the first steps
(KL annealing) instead. The reported KL and ELBO are always the true ones.

**Good for.** Generating new data (decode z ~ N(0, I)), smooth interpolation between inputs
(`interpolate(x1, x2, steps)`), a well-organised latent space for exploration, and anomaly scores.
Reconstructions are typically blurrier than a GAN's samples are sharp.
"""


# log σ² of every posterior before training; None keeps torch's default initialisation (what
# the VAE had before, which benchmarks/bench_collapse.py compares against).
INITIAL_LOGVAR: float | None = -4.0


class VAEParams(Params):
    """Hyperparameters of the (β-)VAE."""

    code_size: int = Field(
        8,
        ge=1,
        le=1024,
        title="Latent size",
        description="Dimensions of the latent code z; the prior is N(0, I) over them.",
    )
    loss: Literal["bce", "mse"] = Field(
        "bce",
        title="Reconstruction loss",
        description="bce: Bernoulli log-likelihood, for values in [0, 1] such as pixels. mse: "
        "Gaussian log-likelihood (squared error), for continuous values. Summed over values.",
    )
    beta: float = Field(
        1.0,
        ge=0.0,
        le=100.0,
        title="β (KL weight)",
        description="Weight of the KL term: 1 is the standard VAE, above 1 a β-VAE with a more "
        "regular, disentangled code, below 1 sharper reconstructions.",
    )
    kl_warmup_steps: int = Field(
        0,
        ge=0,
        le=100_000,
        title="KL warm-up steps",
        description="β ramps linearly from 0 to its value over this many training steps "
        "(batches), so the decoder learns to use the code before the KL term pulls it to the "
        "prior; against posterior collapse. 0 turns it off.",
    )
    free_bits: float = Field(
        1.0,
        ge=0.0,
        le=10.0,
        title="Free bits λ (nats per unit)",
        description="While training, each latent unit's KL (averaged over the batch) counts as "
        "at least λ nats, so the prior gains nothing by shutting a unit below λ and the code "
        "keeps information: against posterior collapse, where every input decodes to the same "
        "blur. 1 keeps the default VAE on digits from collapsing within 10 epochs; the reported "
        "KL and ELBO stay the true ones. 0 turns it off (the plain ELBO).",
    )


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
        if INITIAL_LOGVAR is not None:
            nn.init.zeros_(self.logvar.weight)
            nn.init.constant_(self.logvar.bias, INITIAL_LOGVAR)
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


SPEC = ModelSpec(
    id="vae",
    name="Variational autoencoder (β-VAE)",
    description="Encodes each input as a Gaussian over codes and is trained on the ELBO "
    "(reconstruction + β·KL to N(0, I)), so new data can be sampled from the prior.",
    params=VAEParams,
    factory=VAE,
    help=HELP,
)


@hookimpl
def register_models(register):
    """Register the VAE."""
    register(SPEC)
