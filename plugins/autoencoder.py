"""The stacked undercomplete autoencoder: the classic 'sandwich' that narrows to a code and back."""

from __future__ import annotations

from aelab.hookspecs import hookimpl
from aelab.params import Params
from aelab.specs import ModelSpec

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


SPEC = ModelSpec(
    id="autoencoder",
    name="Autoencoder (undercomplete)",
    description="Fully connected encoder that narrows to a small code and a decoder that mirrors "
    "it; learns to compress by reconstructing its input.",
    params=UndercompleteParams,
    factory="aelab_plugins.nets.autoencoder:Autoencoder",
    capabilities=("encode", "decode", "reconstruct"),
    help=HELP,
)


@hookimpl
def register_models(register):
    register(SPEC)


# The network lives in aelab_plugins.nets.autoencoder, imported on the first build; its classes stay
# importable from this module, as before the split (imported when first asked for).
_NETWORK = ("Autoencoder",)


def __getattr__(name: str):
    if name in _NETWORK:
        from .nets import autoencoder as network

        return getattr(network, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
