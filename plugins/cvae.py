"""The conditional VAE: a VAE whose encoder and decoder are both told the label."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from aelab_plugins.vae import VAE, VAEParams
from pydantic import Field

from aelab.errors import ParamsError
from aelab.hookspecs import hookimpl
from aelab.models import GraphSpec, ModelSpec, _Verb

HELP = """\
**How it works.** A VAE in which the label y (as a one-hot vector) is given to both networks:
the encoder models q(z | x, y) and the decoder p(x | z, y). The loss is the conditional ELBO

  L = reconstruction(x, x̂) + β · KL(q(z|x, y) ‖ N(0, I)),   x̂ = g(z, y),  z = μ + σ ⊙ ε

Because the label is supplied, the code no longer has to store the class and is free to capture
style (slant, thickness, position). With the class given, the ELBO gains little from the code,
which then tends to collapse to nothing (every sample of a class alike); free bits (λ = 0.25 nats
per unit by default, see the VAE) keep the style in it. Training needs labelled data; the trainer
passes each batch's labels to models that list `"y"` in their `batch_fields`.

**Sampling.** Choose a class, draw z ~ N(0, I) and decode [z, one-hot(y)]: new examples of that
class on demand. The exported decoder takes that concatenated code (latent first, one-hot last).

**Good for.** Class-controlled generation (a chosen digit in many styles), style transfer between
classes (encode with one label, decode with another), data augmentation for rare classes.
"""


class CVAEParams(VAEParams):
    """VAE hyperparameters plus the number of classes."""

    n_classes: int = Field(
        10,
        ge=2,
        le=1000,
        title="Classes",
        description="Number of label values the model is conditioned on (labels 0 … n−1); "
        "must cover every label in the data.",
    )
    free_bits: float = Field(
        0.25,
        ge=0.0,
        le=10.0,
        title="Free bits λ (nats per unit)",
        description="While training, each latent unit's KL (averaged over the batch) counts as "
        "at least λ nats, so the code keeps the style (slant, thickness) instead of collapsing "
        "to nothing, with every sample of a class alike. The label already carries the class, "
        "so a small λ suffices: 0.25 keeps style and class fidelity within 10 epochs on digits, "
        "where 1 would trade class fidelity for style. 0 turns it off (the plain ELBO).",
    )


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


SPEC = ModelSpec(
    id="cvae",
    name="Conditional VAE",
    description="A VAE whose encoder and decoder also receive the label, so it generates new "
    "examples of a chosen class.",
    params=CVAEParams,
    factory=CVAE,
    help=HELP,
)


@hookimpl
def register_models(register):
    """Register the conditional VAE."""
    register(SPEC)
