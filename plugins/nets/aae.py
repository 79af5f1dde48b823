"""The network of the adversarial autoencoder (torch), imported by the model's first build.

Its spec, parameters and help are in ``aelab_plugins.aae``, which lists the model without
importing torch."""

from __future__ import annotations

from functools import partial
from typing import Any

import torch
from aelab_plugins.aae import AAEParams
from torch import nn

from aelab.blocks import MLPAutoencoder, mlp
from aelab.losses import discriminator_loss, generator_loss
from aelab.models import make_optimizer
from aelab.params import TrainConfig


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
