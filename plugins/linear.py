"""The linear autoencoder: no nonlinearity anywhere, so with MSE it learns PCA's subspace."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from aelab.hookspecs import hookimpl
from aelab.params import Params
from aelab.specs import ModelSpec

HELP = """\
**How it works.** Encoder and decoder are affine maps with no activation at all, not even on the
output: z = W₁x + b₁ and x̂ = W₂z + b₂ (extra hidden layers only multiply more matrices together,
so the whole model stays linear). Training minimises the mean squared error

  L = 1/N Σᵢ ‖xᵢ − x̂ᵢ‖²

**Why it matters.** The best rank-k linear reconstruction under squared error is given by the
first k principal components (Eckart–Young), so a linear autoencoder with a code of k units
converges to the same subspace as PCA and the same reconstruction error, although its code axes
are any basis of that subspace, not the ordered orthogonal components.

**Good for.** A baseline: it shows how much a nonlinear autoencoder gains over PCA on your data,
and it is the simplest model to check a pipeline with.
"""


class LinearParams(Params):
    """The shared hyperparameters, with no hidden layers by default and MSE only."""

    layers: int = Field(
        0,
        ge=0,
        le=8,
        title="Hidden layers",
        description="Hidden linear layers between the input and the code. Without activations "
        "they add no expressive power (a product of matrices is one matrix), only slower training.",
    )
    loss: Literal["mse"] = Field(
        "mse",
        title="Reconstruction loss",
        description="Mean squared error: with a linear output it is what makes the model "
        "equivalent to PCA.",
    )


SPEC = ModelSpec(
    id="linear",
    name="Linear autoencoder",
    description="Affine encoder and decoder without any nonlinearity; trained with MSE it "
    "reaches PCA's reconstruction error at the same code size.",
    params=LinearParams,
    factory="aelab_plugins.nets.linear:LinearAutoencoder",
    capabilities=("encode", "decode", "reconstruct"),
    help=HELP,
)


@hookimpl
def register_models(register):
    """Register the linear autoencoder."""
    register(SPEC)


# The network lives in aelab_plugins.nets.linear, imported on the first build; its classes stay
# importable from this module, as before the split (imported when first asked for).
_NETWORK = ("LinearAutoencoder",)


def __getattr__(name: str):
    if name in _NETWORK:
        from .nets import linear as network

        return getattr(network, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
