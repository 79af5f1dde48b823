"""An aelab plugin: the tied-weights autoencoder, whose decoder reuses the encoder's weights.

Copy this folder to start a plugin of your own: rename the module, the model id and the
entry point in pyproject.toml, then `pip install -e .`. aelab finds it through the `aelab`
entry-point group; nothing in aelab changes. For a quick try without installing, put this
file in a folder and run `aelab --plugins-dir FOLDER models`. The whole contract is in aelab's
docs/plugins.md; `pytest` here runs aelab's conformance kit on this model.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from aelab.hookspecs import hookimpl
from aelab.losses import reconstruction_loss
from aelab.models import Model, ModelSpec
from aelab.params import Params

ACTIVATIONS = {"sigmoid": torch.sigmoid, "tanh": torch.tanh, "relu": F.relu}


class TiedParams(Params):
    """The shared hyperparameters plus the hidden activation."""

    activation: Literal["sigmoid", "tanh", "relu"] = Field(
        "sigmoid",
        title="Activation",
        description="Non-linearity after each encoder layer; the decoder uses the same one.",
    )


class TiedAutoencoder(Model):
    """Encoder weights W₁…Wₖ; the decoder applies Wₖᵀ…W₁ᵀ, halving the parameter count."""

    capabilities = frozenset({"encode", "decode", "reconstruct"})
    code_kind = "continuous"  # what a code is: continuous, sparse, binary or discrete

    def __init__(self, params: TiedParams, sample_shape: tuple[int, ...]):
        super().__init__(params, sample_shape)
        sizes = [math.prod(sample_shape), *params.widths(), params.code_size]
        self.weights = nn.ParameterList(
            nn.Parameter(torch.randn(b, a) * math.sqrt(1.0 / a)) for a, b in zip(sizes, sizes[1:])
        )
        self.enc_bias = nn.ParameterList(nn.Parameter(torch.zeros(b)) for b in sizes[1:])
        self.dec_bias = nn.ParameterList(nn.Parameter(torch.zeros(a)) for a in sizes[:-1])
        self.act = ACTIVATIONS[params.activation]

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        h = x.reshape(x.shape[0], -1)
        for i, (w, b) in enumerate(zip(self.weights, self.enc_bias)):
            h = F.linear(h, w, b)
            if i < len(self.weights) - 1:  # the code itself stays linear
                h = self.act(h)
        return h

    def decode_logits(self, z: torch.Tensor) -> torch.Tensor:
        """Decoder output before the sigmoid, shaped like the data."""
        h = z
        layers = list(zip(self.weights, self.dec_bias))[::-1]
        for i, (w, b) in enumerate(layers):
            h = F.linear(h, w.t(), b)
            if i < len(layers) - 1:
                h = self.act(h)
        return h.reshape(z.shape[0], *self.sample_shape)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.decode_logits(z))

    def training_step(self, batch: dict[str, torch.Tensor], optimizer: str) -> dict[str, Any]:
        """One step of the model's only optimizer: the reconstruction error of a batch."""
        x = batch["x"]  # float32 in [0, 1], shaped (batch, *sample_shape)
        x_in = x
        if self.training and self.params.noise > 0:
            # The shared noise level is applied by the model itself, during training only, with
            # noise from the model's own generator (never torch's global one).
            x_in = x + self.params.noise * self.randn_like(x)
        recon = reconstruction_loss(self.decode_logits(self.encode(x_in)), x, self.params.loss)
        return {"loss": recon, "reconstruction": recon}  # "loss" is minimised; all are plotted


SPEC = ModelSpec(
    id="tied",
    name="Tied-weights autoencoder",
    description="An autoencoder whose decoder reuses the transposed encoder weights: half the "
    "parameters, and a built-in regulariser.",
    params=TiedParams,
    factory=TiedAutoencoder,
    help="The decoder of layer i is the transpose of the encoder of layer i, so the network "
    "cannot make the encoder and decoder disagree; with linear activations and MSE it learns "
    "the PCA subspace.",
)


@hookimpl
def register_models(register):
    register(SPEC)
