"""The conditional VAE: a VAE whose encoder and decoder are both told the label."""

from __future__ import annotations

from aelab_plugins.vae import VAEParams
from pydantic import Field

from aelab.hookspecs import hookimpl
from aelab.specs import ModelSpec

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


SPEC = ModelSpec(
    id="cvae",
    name="Conditional VAE",
    description="A VAE whose encoder and decoder also receive the label, so it generates new "
    "examples of a chosen class.",
    params=CVAEParams,
    factory="aelab_plugins.nets.cvae:CVAE",
    capabilities=("decode", "sample"),
    help=HELP,
)


@hookimpl
def register_models(register):
    """Register the conditional VAE."""
    register(SPEC)


# The network lives in aelab_plugins.nets.cvae, imported on the first build; its classes stay
# importable from this module, as before the split (imported when first asked for).
_NETWORK = ("CVAE",)


def __getattr__(name: str):
    if name in _NETWORK:
        from .nets import cvae as network

        return getattr(network, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
