"""The variational autoencoder (and β-VAE): a probabilistic code with a prior to sample from."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from aelab.hookspecs import hookimpl
from aelab.params import Params
from aelab.specs import ModelSpec

HELP = """\
**How it works.** The encoder does not output one code but a Gaussian over codes,
q(z|x) = N(μ(x), diag σ²(x)), given by its mean μ and log-variance log σ². A code is drawn with the
**reparameterisation trick** z = μ + σ ⊙ ε, ε ~ N(0, I), so gradients flow through μ and σ; the
decoder maps z back to x̂. Training minimises the negative evidence lower bound (ELBO), per sample:

  L = reconstruction(x, x̂) + β · KL(q(z|x) ‖ N(0, I)),
  KL = ½ Σⱼ (μⱼ² + σⱼ² − log σⱼ² − 1)

with the reconstruction term summed over the values (binary cross-entropy, the Bernoulli
log-likelihood, or squared error, a Gaussian one). The test ELBO = −(reconstruction + KL) is
reported on held-out data (higher is better).

**β (β-VAE).** β = 1 is the plain VAE. β > 1 weighs the prior more: smoother, more disentangled
codes at the cost of blurrier reconstructions; β < 1 reconstructs better with a less regular code.
If the KL term falls to zero the code carries no information and every input decodes to the
same blur (posterior collapse; the lab warns below 1 nat). **Free bits** (on by default, λ = 1
nat per unit) count each unit's KL as at least λ while training, so the prior gains nothing by
shutting a unit off; every posterior also starts narrow (σ ≈ 0.14), so the decoder sees
informative codes from the first step. Together they keep the default VAE on digits from
collapsing within the default 10 epochs. A **KL warm-up** ramps β from 0 over the first steps
(KL annealing) instead. The reported KL and ELBO are always the true ones.

**Good for.** Generating new data (decode z ~ N(0, I)), smooth interpolation between inputs
(`interpolate(x1, x2, steps)`), a well-organised latent space for exploration, and anomaly scores.
Reconstructions are typically blurrier than a GAN's samples are sharp.
"""


# log σ² of every posterior before training; None keeps torch's default initialisation (what
# the VAE had before, which benchmarks/bench_collapse.py compares against).
INITIAL_LOGVAR: float | None = -4.0


class VAEParams(Params):
    """Hyperparameters of the (β-)VAE."""

    code_size: int = Field(
        8,
        ge=1,
        le=1024,
        title="Latent size",
        description="Dimensions of the latent code z; the prior is N(0, I) over them.",
    )
    loss: Literal["bce", "mse"] = Field(
        "bce",
        title="Reconstruction loss",
        description="bce: Bernoulli log-likelihood, for values in [0, 1] such as pixels. mse: "
        "Gaussian log-likelihood (squared error), for continuous values. Summed over values.",
    )
    beta: float = Field(
        1.0,
        ge=0.0,
        le=100.0,
        title="β (KL weight)",
        description="Weight of the KL term: 1 is the standard VAE, above 1 a β-VAE with a more "
        "regular, disentangled code, below 1 sharper reconstructions.",
    )
    kl_warmup_steps: int = Field(
        0,
        ge=0,
        le=100_000,
        title="KL warm-up steps",
        description="β ramps linearly from 0 to its value over this many training steps "
        "(batches), so the decoder learns to use the code before the KL term pulls it to the "
        "prior; against posterior collapse. 0 turns it off.",
    )
    free_bits: float = Field(
        1.0,
        ge=0.0,
        le=10.0,
        title="Free bits λ (nats per unit)",
        description="While training, each latent unit's KL (averaged over the batch) counts as "
        "at least λ nats, so the prior gains nothing by shutting a unit below λ and the code "
        "keeps information: against posterior collapse, where every input decodes to the same "
        "blur. 1 keeps the default VAE on digits from collapsing within 10 epochs; the reported "
        "KL and ELBO stay the true ones. 0 turns it off (the plain ELBO).",
    )


SPEC = ModelSpec(
    id="vae",
    name="Variational autoencoder (β-VAE)",
    description="Encodes each input as a Gaussian over codes and is trained on the ELBO "
    "(reconstruction + β·KL to N(0, I)), so new data can be sampled from the prior.",
    params=VAEParams,
    factory="aelab_plugins.nets.vae:VAE",
    capabilities=("encode", "decode", "reconstruct", "sample"),
    help=HELP,
)


@hookimpl
def register_models(register):
    """Register the VAE."""
    register(SPEC)


# The network lives in aelab_plugins.nets.vae, imported on the first build; its classes stay
# importable from this module, as before the split (imported when first asked for).
_NETWORK = ("_Stats", "VAE")


def __getattr__(name: str):
    if name in _NETWORK:
        from .nets import vae as network

        return getattr(network, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
