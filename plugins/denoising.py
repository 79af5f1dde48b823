"""The denoising autoencoder: reconstructs the clean input from a corrupted copy."""

from __future__ import annotations

from pydantic import Field, model_validator

from aelab.hookspecs import hookimpl
from aelab.param_groups import CorruptionParams
from aelab.specs import ModelSpec

HELP = """\
**How it works.** During training each input x is corrupted into x̃ and the autoencoder must
recover the *clean* x from it:

  L = 1/N Σᵢ ‖xᵢ − g(f(x̃ᵢ))‖²   (or the binary cross-entropy)

Three corruptions are available:
- **gaussian**: x̃ = x + ε with ε ~ N(μ, σ²) on every value (μ is the noise mean, σ the noise level);
- **mask**: a fraction of the values is set to 0 (as if pixels were missing);
- **salt_pepper**: a fraction of the values is set to 0 or 1 at random.

**Why it learns something.** Copying the input would copy the noise too, so the network has to
learn what clean data looks like — the data manifold — and project corrupted points back onto it.
At inference the input is used as given (no noise is added).

**Good for.** Removing noise from images or signals, filling in missing values, and robust
features; the same idea works with a code larger than the input.
"""


class DenoisingParams(CorruptionParams):
    """Corruption settings of the denoising autoencoder (on by default)."""

    noise: float = Field(
        0.3,
        ge=0.0,
        le=1.0,
        title="Noise level σ",
        description="Standard deviation σ of the Gaussian noise ε ~ N(μ, σ²) added to training "
        "inputs (gaussian corruption); the loss compares with the clean input.",
    )
    corrupt_fraction: float = Field(
        0.3,
        ge=0.0,
        le=0.95,
        title="Corrupted fraction",
        description="Share of input values set to 0 (mask) or to 0 or 1 (salt_pepper) during "
        "training; unused by gaussian corruption.",
    )

    @model_validator(mode="after")
    def _needs_corruption(self) -> DenoisingParams:
        if self.corruption_strength() == 0 and not (
            self.corruption == "gaussian" and self.noise_mean
        ):
            raise ValueError(
                f"a denoising autoencoder needs corruption: with {self.corruption} corruption at "
                "strength 0 it is a plain autoencoder; raise the noise level or corrupted fraction"
            )
        return self


SPEC = ModelSpec(
    id="denoising",
    name="Denoising autoencoder",
    description="Learns to recover clean inputs from copies corrupted by Gaussian, masking or "
    "salt-and-pepper noise.",
    params=DenoisingParams,
    factory="aelab_plugins.nets.denoising:DenoisingAutoencoder",
    capabilities=("encode", "decode", "reconstruct"),
    help=HELP,
)


@hookimpl
def register_models(register):
    """Register the denoising autoencoder."""
    register(SPEC)


# The network lives in aelab_plugins.nets.denoising, imported on the first build; its classes stay
# importable from this module, as before the split (imported when first asked for).
_NETWORK = ("DenoisingAutoencoder",)


def __getattr__(name: str):
    if name in _NETWORK:
        from .nets import denoising as network

        return getattr(network, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
