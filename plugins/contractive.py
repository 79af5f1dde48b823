"""The contractive autoencoder: a code that barely moves when the input moves a little."""

from __future__ import annotations

from pydantic import Field

from aelab.hookspecs import hookimpl
from aelab.param_groups import ContractiveParams
from aelab.specs import ModelSpec

HELP = """\
**How it works.** Besides reconstructing, the encoder f is penalised by the squared Frobenius
norm of its Jacobian, the sum of squares of every ∂zⱼ/∂xᵢ:

  L = ‖x − g(f(x))‖² + λ ‖J_f(x)‖²_F,   ‖J_f(x)‖²_F = Σᵢⱼ (∂zⱼ/∂xᵢ)²

With no hidden layer the code is z = sigmoid(Wx + b) and the penalty has a cheap exact form,
Σⱼ (zⱼ(1 − zⱼ))² Σᵢ Wⱼᵢ²; deeper encoders compute it by automatic differentiation (one
backward pass per code unit).

**Why it learns something.** Reconstruction wants the code to follow the data; the penalty wants
it to ignore every change. The compromise keeps sensitivity only along directions the data
actually varies in (the manifold), and contracts everything else: neighbouring inputs get
neighbouring codes.

**Good for.** Robust features that do not change with small perturbations, and learning the
shape of the data manifold; similar in spirit to denoising but analytic instead of sampled.
"""


class ContractiveAEParams(ContractiveParams):
    """Contractive settings: one sigmoid layer by default so the penalty is exact."""

    layers: int = Field(
        0,
        ge=0,
        le=8,
        title="Hidden layers",
        description="Hidden layers before the code. 0 (a single sigmoid layer) gives the exact "
        "closed-form penalty; more layers use autograd, one backward pass per code unit.",
    )
    code_size: int = Field(
        16,
        ge=1,
        le=1024,
        title="Code size",
        description="Units in the (sigmoid) code.",
    )
    contractive_weight: float = Field(
        0.01,
        ge=0.0,
        le=10.0,
        title="Contractive weight λ",
        description="Weight λ of λ·‖J_f(x)‖²_F; larger makes the code less sensitive to input "
        "changes, at the cost of reconstruction.",
    )


SPEC = ModelSpec(
    id="contractive",
    name="Contractive autoencoder",
    description="Penalises the encoder's Jacobian norm λ‖J_f(x)‖²_F so that small input changes "
    "barely move the code.",
    params=ContractiveAEParams,
    factory="aelab_plugins.nets.contractive:ContractiveAutoencoder",
    capabilities=("encode", "decode", "reconstruct"),
    help=HELP,
)


@hookimpl
def register_models(register):
    """Register the contractive autoencoder."""
    register(SPEC)


# The network lives in aelab_plugins.nets.contractive, imported on the first build; its classes stay
# importable from this module, as before the split (imported when first asked for).
_NETWORK = ("ContractiveAutoencoder",)


def __getattr__(name: str):
    if name in _NETWORK:
        from .nets import contractive as network

        return getattr(network, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
