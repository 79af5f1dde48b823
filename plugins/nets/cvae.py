"""The network of the conditional VAE (torch), imported by the model's first build.

Its spec, parameters and help are in ``aelab_plugins.cvae``, which lists the model without
importing torch."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from aelab_plugins.cvae import CVAEParams
from aelab_plugins.nets.vae import VAE

from aelab.errors import ParamsError
from aelab.models import GraphSpec, _Verb


class CVAE(VAE):
    """VAE conditioned on one-hot labels in both encoder and decoder."""

    capabilities = frozenset({"decode", "sample"})  # encoding and reconstructing need a label
    batch_fields = ("x", "y")

    @staticmethod
    def condition_size(params: CVAEParams) -> int:
        return params.n_classes

    @property
    def code_shape(self) -> tuple[int, ...]:
        return (self.params.code_size + self.params.n_classes,)

    def one_hot(self, y: torch.Tensor) -> torch.Tensor:
        """Labels as one-hot rows, with a clear error for labels outside 0 … n_classes−1."""
        if y.numel() and (int(y.min()) < 0 or int(y.max()) >= self.params.n_classes):
            raise ParamsError(
                f"The data has labels from {int(y.min())} to {int(y.max())} but the model has "
                f"n_classes = {self.params.n_classes}; set n_classes to at least {int(y.max()) + 1}."
            )
        return F.one_hot(y.long(), self.params.n_classes).to(self.mean.weight.dtype)

    def _with_label(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return torch.cat([x.reshape(x.shape[0], -1), self.one_hot(y)], dim=1)

    def posterior(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and log-variance of q(z|x, y) for a labelled batch."""
        return self.encode_stats(self._with_label(batch["x"], batch["y"]))

    def likelihood_inputs(
        self, batch: dict[str, torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """(x, [x, one-hot label] for the encoder, the one-hot label for the decoder)."""
        x, y = batch["x"], batch["y"]
        return x, self._with_label(x, y), self.one_hot(y)

    def encode_labeled(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The mean code of x given its label."""
        return self.encode_stats(self._with_label(x, y))[0]

    def reconstruct_labeled(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Encode with the label, decode with the same label."""
        return self.decode(torch.cat([self.encode_labeled(x, y), self.one_hot(y)], dim=1))

    def interpolate(
        self,
        x1: torch.Tensor,
        x2: torch.Tensor,
        steps: int = 8,
        y1: torch.Tensor | int = 0,
        y2: torch.Tensor | int | None = None,
    ) -> torch.Tensor:
        """Outputs decoded along the line between [code, one-hot label] of two labelled inputs."""
        y2 = y1 if y2 is None else y2
        with torch.no_grad():
            ends = []
            for x, y in ((x1, y1), (x2, y2)):
                x = x.reshape(1, *self.sample_shape)
                y = torch.as_tensor(y, device=x.device).reshape(1)
                ends.append(torch.cat([self.encode_labeled(x, y), self.one_hot(y)], dim=1))
            t = torch.linspace(0, 1, steps, device=ends[0].device).unsqueeze(1)
            return self.decode(ends[0] * (1 - t) + ends[1] * t)

    def sample(
        self, n: int, generator: torch.Generator | None = None, labels: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``n`` samples of the given labels (default: the classes in turn)."""
        device = self.mean.weight.device
        y = torch.arange(n, device=device) % self.params.n_classes if labels is None else labels
        z = torch.randn(n, self.params.code_size, generator=generator, device=device)
        with torch.no_grad():
            return self.decode(torch.cat([z, self.one_hot(y)], dim=1))

    def training_step(self, batch: dict[str, torch.Tensor], optimizer: str) -> dict[str, Any]:
        x, y = batch["x"], batch.get("y")
        if y is None:
            raise ParamsError(
                "The conditional VAE needs each sample's label; train it on labelled data."
            )
        return self.elbo_terms(x, self._with_label(self.noisy(x), y), self.one_hot(y))

    def graphs(self) -> list[GraphSpec]:
        return [
            GraphSpec(
                "decoder",
                _Verb(self, "decode"),
                "code",
                self.code_shape,
                ["output"],
                None,
                input_note=f"a latent code of {self.params.code_size} values from N(0, I) "
                f"followed by a one-hot label of {self.params.n_classes} values",
            ),
        ]
