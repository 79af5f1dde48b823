"""The overcomplete autoencoder: a code larger than the input, kept from copying by a regulariser."""

from __future__ import annotations

from pydantic import Field, model_validator

from aelab.hookspecs import hookimpl
from aelab.param_groups import ContractiveParams, CorruptionParams, SparsityParams
from aelab.specs import ModelSpec

HELP = """\
**How it works.** The code z = f(x) has *more* units than the input has values, and a decoder maps
it back to x̂ = g(z). Such a network can reconstruct perfectly by learning the identity, which
teaches nothing, so it is only allowed with at least one regulariser that makes copying costly:

  L = ‖x − g(f(x̃))‖² + λ₁ · meanⱼ|zⱼ| + β · meanⱼ KL(ρ‖ρ̂ⱼ) + λ_c ‖J_f(x)‖²_F

where x̃ is x with noise added during training (the loss still compares with the clean x), the
L1 and KL terms make the code sparse, and the last term makes it contractive. The code units go
through a sigmoid so that activations read as firing rates in (0, 1).

**Good for.** Learning many specialised features (more features than inputs, each used rarely),
as in sparse coding; features for a downstream classifier.
"""


class OvercompleteParams(SparsityParams, ContractiveParams, CorruptionParams):
    """A code larger than the input and the regularisers that keep it from the identity."""

    code_size: int = Field(
        0,
        ge=0,
        le=8192,
        title="Code size",
        description="Units in the code; it must be larger than the input. 0 picks twice the "
        "number of input values.",
    )
    layers: int = Field(
        1,
        ge=0,
        le=8,
        title="Hidden layers",
        description="Hidden layers between the input and the code in the encoder; the decoder "
        "mirrors them. One trains quickly; deeper stacks under a sigmoid code learn slowly.",
    )
    l1_weight: float = Field(
        0.03,
        ge=0.0,
        le=10.0,
        title="L1 weight λ₁",
        description="Weight of the L1 penalty λ₁·meanⱼ|zⱼ| on the code activations. 0 turns it off.",
    )

    @model_validator(mode="after")
    def _needs_regulariser(self) -> OvercompleteParams:
        strength = self.l1_weight + self.kl_weight + self.contractive_weight
        if strength == 0 and self.corruption_strength() == 0:
            raise ValueError(
                "an overcomplete autoencoder with no regulariser would simply learn the identity "
                "(copy every input value into the larger code and back), so set at least one of "
                "l1_weight, kl_weight, contractive_weight, or a noise level / corrupted fraction"
            )
        return self


SPEC = ModelSpec(
    id="overcomplete",
    name="Overcomplete autoencoder",
    description="A code with more units than the input, kept from learning the identity by "
    "sparsity, noise or a contractive penalty.",
    params=OvercompleteParams,
    factory="aelab_plugins.nets.overcomplete:OvercompleteAutoencoder",
    capabilities=("encode", "decode", "reconstruct"),
    help=HELP,
)


@hookimpl
def register_models(register):
    """Register the overcomplete autoencoder."""
    register(SPEC)


# The network lives in aelab_plugins.nets.overcomplete, imported on the first build; its classes stay
# importable from this module, as before the split (imported when first asked for).
_NETWORK = ("OvercompleteAutoencoder",)


def __getattr__(name: str):
    if name in _NETWORK:
        from .nets import overcomplete as network

        return getattr(network, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
