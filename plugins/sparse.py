"""The sparse autoencoder: only a few code units are active for any one input."""

from __future__ import annotations

from pydantic import Field, model_validator

from aelab.hookspecs import hookimpl
from aelab.param_groups import SparsityParams
from aelab.specs import ModelSpec

HELP = """\
**How it works.** An autoencoder whose code units (sigmoid activations zⱼ ∈ (0, 1)) are
penalised for being active, so each input is described by a few units:

  L = ‖x − x̂‖² + λ · meanⱼ |zⱼ| + β · meanⱼ KL(ρ ‖ ρ̂ⱼ)

- **L1** (weight λ) pushes every activation towards zero, input by input;
- **KL** (weight β) compares a target activation ρ (e.g. 0.05) with each unit's mean activation
  ρ̂ⱼ over the batch: KL(ρ‖ρ̂) = ρ log(ρ/ρ̂) + (1−ρ) log((1−ρ)/(1−ρ̂)). It allows a unit to fire
  strongly for a few inputs, as long as it is quiet on average.

Both penalties are averaged over the code units (like the reconstruction error over values), so a
weight means the same whatever the code size.

**Why it learns something.** The penalty, not the code size, limits what passes through, so the
code may be larger than the input (overcomplete) and still not learn the identity.

**Good for.** Interpretable, specialised features (each unit detects one pattern), features for
classification, and anomaly detection.
"""


class SparseParams(SparsityParams):
    """Sparsity settings (KL on by default)."""

    code_size: int = Field(
        64,
        ge=1,
        le=8192,
        title="Code size",
        description="Units in the code. Sparsity limits the information, so the code may be "
        "larger than the input.",
    )
    layers: int = Field(
        1,
        ge=0,
        le=8,
        title="Hidden layers",
        description="Hidden layers between the input and the code in the encoder; the decoder "
        "mirrors them.",
    )
    kl_weight: float = Field(
        1.0,
        ge=0.0,
        le=10.0,
        title="KL sparsity weight β",
        description="Weight β of β·meanⱼ KL(ρ‖ρ̂ⱼ), pulling each unit's mean activation ρ̂ⱼ "
        "towards the target ρ. 0 turns it off.",
    )

    @model_validator(mode="after")
    def _needs_penalty(self) -> SparseParams:
        if self.l1_weight == 0 and self.kl_weight == 0:
            raise ValueError(
                "a sparse autoencoder needs a sparsity penalty: set l1_weight or kl_weight above 0"
            )
        return self


SPEC = ModelSpec(
    id="sparse",
    name="Sparse autoencoder",
    description="Penalises code activity (L1 on activations, KL to a target firing rate ρ) so "
    "that only a few units describe each input; the code may exceed the input.",
    params=SparseParams,
    factory="aelab_plugins.nets.sparse:SparseAutoencoder",
    capabilities=("encode", "decode", "reconstruct"),
    help=HELP,
)


@hookimpl
def register_models(register):
    """Register the sparse autoencoder."""
    register(SPEC)


# The network lives in aelab_plugins.nets.sparse, imported on the first build; its classes stay
# importable from this module, as before the split (imported when first asked for).
_NETWORK = ("SparseAutoencoder",)


def __getattr__(name: str):
    if name in _NETWORK:
        from .nets import sparse as network

        return getattr(network, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
