"""The adversarial autoencoder: an autoencoder whose code distribution is matched to a prior."""

from __future__ import annotations

from functools import partial
from typing import Any, Literal

import torch
from pydantic import Field
from torch import nn

from aelab.blocks import MLPAutoencoder, mlp
from aelab.hookspecs import hookimpl
from aelab.losses import discriminator_loss, generator_loss
from aelab.models import ModelSpec, make_optimizer
from aelab.params import Params, TrainConfig

HELP = """\
**How it works.** A deterministic autoencoder z = f(x), x̂ = g(z), plus a small discriminator D
that looks at *codes*: it learns to tell codes drawn from the prior p(z) = N(0, I) from codes the
encoder produced. Each batch takes three steps:

  1. reconstruction:  L_R = BCE(x, g(f(x)))  (or ‖x − g(f(x))‖² with mse), updating encoder
     and decoder at the training learning rate;
  2. discriminator:   L_D = −log D(z_prior) − log(1 − D(f(x))), updating D at its own rate;
  3. generator:       L_G = −w · log D(f(x)), updating the encoder to fool D, at its own rate.

At equilibrium the encoder's codes are distributed like the prior, with no holes, so decoding
z ~ N(0, I) gives data-like samples — like a VAE, but the prior is imposed adversarially rather
than by a KL term, and the encoder stays deterministic.

**Good for.** Generation with a chosen prior, a well-covered latent space for exploration and
interpolation, and representation learning with a regular code.
"""


class AAEParams(Params):
    """Hyperparameters of the adversarial autoencoder."""

    loss: Literal["mse", "bce"] = Field(
        "bce",
        title="Reconstruction loss",
        description="mse: mean squared error; bce: binary cross-entropy, for values in [0, 1].",
    )
    adversarial_weight: float = Field(
        1.0,
        ge=0.0,
        le=100.0,
        title="Adversarial weight w",
        description="Weight of the encoder's loss for fooling the code discriminator; larger "
        "matches the prior more closely at some cost in reconstruction.",
    )
    disc_nodes: int = Field(
        64,
        ge=1,
        le=4096,
        title="Discriminator width",
        description="Units in each of the code discriminator's two hidden layers.",
    )
    lr_discriminator: float = Field(
        5e-4,
        gt=0.0,
        le=1.0,
        title="Discriminator learning rate",
        description="Step size of the code discriminator's optimizer.",
    )
    lr_generator: float = Field(
        5e-4,
        gt=0.0,
        le=1.0,
        title="Encoder (generator) learning rate",
        description="Step size of the encoder's adversarial update; the reconstruction step uses "
        "the training learning rate.",
    )


class AdversarialAutoencoder(MLPAutoencoder):
    """MLP autoencoder plus a code discriminator; three optimizers stepped in turn."""

    capabilities = frozenset({"encode", "decode", "reconstruct", "sample"})
    steps = ("reconstruction", "discriminator", "generator")

    def __init__(self, params: AAEParams, sample_shape: tuple[int, ...]):
        super().__init__(params, sample_shape)
        h = params.disc_nodes
        self.discriminator = mlp([params.code_size, h, h, 1], partial(nn.LeakyReLU, 0.2))

    def configure_optimizers(self, config: TrainConfig) -> dict[str, torch.optim.Optimizer]:
        p = self.params
        autoencoder = [*self.encoder.parameters(), *self.decoder.parameters()]
        return {
            "reconstruction": make_optimizer(config, autoencoder),
            "discriminator": make_optimizer(
                config, self.discriminator.parameters(), lr=p.lr_discriminator
            ),
            "generator": make_optimizer(config, self.encoder.parameters(), lr=p.lr_generator),
        }

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        device = self.discriminator[0].weight.device
        z = torch.randn(n, self.params.code_size, generator=generator, device=device)
        with torch.no_grad():
            return self.decode(z)

    def training_step(self, batch: dict[str, torch.Tensor], optimizer: str) -> dict[str, Any]:
        if optimizer == "reconstruction":
            return super().training_step(batch, optimizer)
        # The generator's step reuses the discriminator step's codes: the encoder does not
        # change in between (only the discriminator does).
        x, cached = batch["x"], self.__dict__.pop("_codes", None)
        z = cached[1] if optimizer == "generator" and cached and cached[0] is x else self.encode(x)
        if optimizer == "discriminator":
            self.__dict__["_codes"] = (x, z)
            prior = self.randn_like(z)
            loss = discriminator_loss(self.discriminator(prior), self.discriminator(z.detach()))
            return {"discriminator": loss, "loss": loss}
        loss = self.params.adversarial_weight * generator_loss(self.discriminator(z))
        return {"generator": loss, "loss": loss}


SPEC = ModelSpec(
    id="aae",
    name="Adversarial autoencoder",
    description="An autoencoder whose codes are pushed by a discriminator to follow the N(0, I) "
    "prior, so decoding prior samples generates data.",
    params=AAEParams,
    factory=AdversarialAutoencoder,
    help=HELP,
)


@hookimpl
def register_models(register):
    """Register the adversarial autoencoder."""
    register(SPEC)
