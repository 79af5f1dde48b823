"""The network of the GAN and the DCGAN (torch), imported by the model's first build.

Its spec, parameters and help are in ``aelab_plugins.gan``, which lists the model without
importing torch."""

from __future__ import annotations

import math
from functools import partial
from typing import Any

import torch
from aelab_plugins.gan import GANParams
from torch import nn

from aelab.blocks import ConvDecoder, ConvEncoder, mlp
from aelab.losses import discriminator_loss, generator_loss
from aelab.models import METRICS, GraphSpec, Model, _Verb, make_optimizer
from aelab.params import TrainConfig


class GAN(Model):
    """Generator and discriminator; the trainer steps ("discriminator", "generator") in order."""

    capabilities = frozenset({"decode", "sample"})
    steps = ("discriminator", "generator")

    def __init__(self, params: GANParams, sample_shape: tuple[int, ...]):
        super().__init__(params, sample_shape)
        self.generator, self.discriminator = self.build_networks(params, tuple(sample_shape))

    def build_networks(
        self, params: GANParams, shape: tuple[int, ...]
    ) -> tuple[nn.Module, nn.Module]:
        """Fully connected G (noise → data) and D (data → logit)."""
        n_in, widths = math.prod(shape), params.widths()
        # Batch norm in the generator (as in DCGAN) keeps it from collapsing onto a few modes.
        gen = nn.Sequential(
            mlp([params.code_size, *widths, n_in], nn.ReLU, batchnorm=True), nn.Unflatten(1, shape)
        )
        leaky = partial(nn.LeakyReLU, 0.2)
        disc = nn.Sequential(nn.Flatten(), mlp([n_in, *reversed(widths), 1], leaky))
        return gen, disc

    def _to_d(self, x: torch.Tensor) -> torch.Tensor:
        return x * 2 - 1 if self.params.output == "tanh" else x

    def _generate(self, z: torch.Tensor) -> torch.Tensor:
        """G(z) in the discriminator's range."""
        out = self.generator(z)
        return torch.tanh(out) if self.params.output == "tanh" else torch.sigmoid(out)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Generated samples in the data's range [0, 1]."""
        out = self._generate(z)
        return (out + 1) / 2 if self.params.output == "tanh" else out

    def critic(self, x: torch.Tensor) -> torch.Tensor:
        """The discriminator's logit for data in [0, 1]."""
        return self.discriminator(self._to_d(x))

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        z = torch.randn(n, self.params.code_size, generator=generator, device=self._device())
        with torch.no_grad():
            return self.decode(z)

    def _device(self) -> torch.device:
        return next(self.parameters()).device

    def configure_optimizers(self, config: TrainConfig) -> dict[str, torch.optim.Optimizer]:
        p = self.params
        opts = {
            "discriminator": make_optimizer(
                config, self.discriminator.parameters(), lr=p.lr_discriminator
            ),
            "generator": make_optimizer(config, self.generator.parameters(), lr=p.lr_generator),
        }
        for opt in opts.values():
            for group in opt.param_groups:
                if "betas" in group:  # Adam's momentum of 0.9 makes the two-player game oscillate
                    group["betas"] = (p.beta1, group["betas"][1])
        return opts

    def _d(self, x_d: torch.Tensor) -> torch.Tensor:
        if self.training and self.params.noise > 0:
            x_d = x_d + self.params.noise * self.randn_like(x_d)
        return self.discriminator(x_d)

    def training_step(self, batch: dict[str, torch.Tensor], optimizer: str) -> dict[str, Any]:
        """D's step: z ~ N(0, I), fake = G(z), BCE of D on real vs fake (fake detached). G's
        step on the same batch reuses that fake (G has not changed since) instead of running G
        again, as the usual DCGAN loop does: −log D(fake) with D just updated."""
        x = batch["x"]
        cached = self.__dict__.pop("_fake", None)
        if optimizer == "generator" and cached is not None and cached[0] is x:
            fake = cached[1]
        else:
            fake = self._generate(self.randn(x.shape[0], self.params.code_size, like=x))
        if optimizer == "discriminator":
            self.__dict__["_fake"] = (x, fake)  # for the generator's step on this batch
            real_logit, fake_logit = self._d(self._to_d(x)), self._d(fake.detach())
            loss = discriminator_loss(real_logit, fake_logit, self.params.label_smoothing)
            # How sure D is on each side: the balance of the game, reported but never minimised.
            metrics = {
                "d_real": torch.sigmoid(real_logit.detach()).mean(),
                "d_fake": torch.sigmoid(fake_logit.detach()).mean(),
            }
            return {"discriminator": loss, "loss": loss, METRICS: metrics}
        loss = generator_loss(self._d(fake))
        return {"generator": loss, "loss": loss}

    def graphs(self) -> list[GraphSpec]:
        return [
            GraphSpec(
                "generator",
                _Verb(self, "decode"),
                "noise",
                self.code_shape,
                ["sample"],
                None,
                prior="normal",
            ),
            GraphSpec(
                "discriminator", _Verb(self, "critic"), "input", self.sample_shape, ["logit"]
            ),
        ]


class DCGAN(GAN):
    """GAN with an upsampling convolutional generator and a strided-convolution discriminator."""

    def build_networks(
        self, params: GANParams, shape: tuple[int, ...]
    ) -> tuple[nn.Module, nn.Module]:
        channels = params.widths()
        gen = ConvDecoder(params.code_size, shape, channels, params.upsampling, batchnorm=True)
        disc = ConvEncoder(shape, channels, 1, strided=True)
        return gen, disc
