"""The adversarial autoencoder: an autoencoder whose code distribution is matched to a prior."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from aelab.hookspecs import hookimpl
from aelab.params import Params
from aelab.specs import ModelSpec

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


SPEC = ModelSpec(
    id="aae",
    name="Adversarial autoencoder",
    description="An autoencoder whose codes are pushed by a discriminator to follow the N(0, I) "
    "prior, so decoding prior samples generates data.",
    params=AAEParams,
    factory="aelab_plugins.nets.aae:AdversarialAutoencoder",
    capabilities=("encode", "decode", "reconstruct", "sample"),
    help=HELP,
)


@hookimpl
def register_models(register):
    """Register the adversarial autoencoder."""
    register(SPEC)


# The network lives in aelab_plugins.nets.aae, imported on the first build; its classes stay
# importable from this module, as before the split (imported when first asked for).
_NETWORK = ("AdversarialAutoencoder",)


def __getattr__(name: str):
    if name in _NETWORK:
        from .nets import aae as network

        return getattr(network, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
