"""The stacked undercomplete autoencoder: the classic 'sandwich' that narrows to a code and back."""

from __future__ import annotations

from aelab.blocks import MLPAutoencoder
from aelab.errors import ParamsError
from aelab.hookspecs import hookimpl
from aelab.models import ModelSpec
from aelab.params import Params

HELP = """\
**How it works.** A fully connected encoder f narrows the input x through the hidden layers to a
code z = f(x) with fewer units than the input; a decoder g mirrors it back to x̂ = g(z), with a
sigmoid output for data scaled to [0, 1]. Training minimises the reconstruction error

  L = 1/N Σᵢ ‖xᵢ − g(f(xᵢ))‖²   (mse)   or the binary cross-entropy (bce).

**Why it learns something.** The code is too small to copy the input, so the network has to keep
what matters most about the data and drop the rest: a non-linear cousin of PCA.

**Good for.** Dimensionality reduction and visualisation (code size 2), compression, features for
another model, and anomaly detection: inputs unlike the training data reconstruct badly.
"""


class UndercompleteParams(Params):
    """Hyperparameters of the plain autoencoder (the shared ones, nothing more)."""


class Autoencoder(MLPAutoencoder):
    """Encoder → small code → mirrored decoder, ReLU between layers."""

    def __init__(self, params: Params, sample_shape: tuple[int, ...]):
        super().__init__(params, sample_shape)
        if params.code_size >= self.n_in:
            raise ParamsError(
                f"A code of {params.code_size} units is not smaller than the input's "
                f"{self.n_in} values, so this undercomplete autoencoder could learn to copy its "
                "input; choose a code size below "
                f"{self.n_in}, or an overcomplete model with a regulariser."
            )


SPEC = ModelSpec(
    id="autoencoder",
    name="Autoencoder (undercomplete)",
    description="Fully connected encoder that narrows to a small code and a decoder that mirrors "
    "it; learns to compress by reconstructing its input.",
    params=UndercompleteParams,
    factory=Autoencoder,
    help=HELP,
)


@hookimpl
def register_models(register):
    register(SPEC)
