"""The 1-D convolutional autoencoder: convolutions along time for windows of a series."""

from __future__ import annotations

from pydantic import Field, field_validator

from aelab.hookspecs import hookimpl
from aelab.param_groups import CorruptionParams, SparsityParams
from aelab.specs import ModelSpec

HELP = """\
**How it works.** The input is a window of a time series, C channels × W time steps (a flat
vector is read as one channel). The encoder applies stages of 1-D convolution along time → ReLU
→ max-pooling by 2 (each halving the length), then a linear layer to the code; the decoder maps
the code to a short feature sequence and doubles it back stage by stage (nearest-neighbour
upsampling + convolution), ending in a sigmoid. Windows whose length is not a multiple of
2^stages are zero-padded at the end and cropped back, so the output has the input's shape. The
loss is the reconstruction error

  L = ‖x − g(f(x̃))‖² + λ · meanⱼ|zⱼ| + β · meanⱼ KL(ρ‖ρ̂ⱼ)

with optional input noise (x̃) and sparsity penalties, as in the 2-D convolutional autoencoder.

**Why convolutions along time.** The same small filters slide over every position, so a
pattern (a cycle, a spike, a step) is recognised wherever it occurs in the window, with far
fewer weights than a dense layer over C × W values; channels are mixed by each filter.

**Good for.** Time series: anomaly detection along the time axis (`reconstruct_series` puts
the windows back in time with the error at each step), denoising sensor signals, compact
features of windows.
"""


class Conv1dParams(CorruptionParams, SparsityParams):
    """A 1-D convolutional autoencoder: conv stages along time, optional noise and sparsity."""

    layers: int = Field(
        2,
        ge=1,
        le=5,
        title="Conv stages",
        description="Convolution → ReLU → max-pool stages in the encoder; the decoder mirrors "
        "them with upsampling. Each stage halves the window's length.",
    )
    nodes: int | list[int] = Field(
        16,
        title="Channels per stage",
        description="Feature channels in each conv stage: one number for every stage, or a "
        "list with one count per stage from the input side (for example [16, 32]).",
    )
    kernel_size: int = Field(
        5,
        ge=3,
        le=15,
        title="Kernel size",
        description="Time steps each convolution looks at, an odd number (3, 5, 7 …) so the "
        "output stays aligned with the input; longer kernels see slower patterns.",
    )

    @field_validator("kernel_size")
    @classmethod
    def _odd(cls, value: int) -> int:
        if value % 2 == 0:
            raise ValueError(f"the kernel size must be odd (3, 5, 7 …), not {value}")
        return value


SPEC = ModelSpec(
    id="conv1d",
    name="1-D convolutional autoencoder",
    description="Convolutions along time down to a code and back up, for windows of a time "
    "series (channels × time steps); works on any window length.",
    params=Conv1dParams,
    factory="aelab_plugins.nets.conv1d:Conv1dAutoencoder",
    capabilities=("encode", "decode", "reconstruct"),
    accepts=("flat",),
    help=HELP,
)


@hookimpl
def register_models(register):
    """Register the 1-D convolutional autoencoder."""
    register(SPEC)


# The network lives in aelab_plugins.nets.conv1d, imported on the first build; its classes stay
# importable from this module, as before the split (imported when first asked for).
_NETWORK = ("Conv1dAutoencoder",)


def __getattr__(name: str):
    if name in _NETWORK:
        from .nets import conv1d as network

        return getattr(network, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
