"""The 1-D convolutional autoencoder: convolutions along time for windows of a series."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from pydantic import Field, field_validator
from torch import nn

from aelab.blocks import CorruptionParams, ReconstructionAutoencoder, SparsityParams, padded_size
from aelab.errors import ParamsError
from aelab.hookspecs import hookimpl
from aelab.models import ModelSpec

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


class Conv1dAutoencoder(ReconstructionAutoencoder):
    """1-D convolutional encoder → dense code → 1-D convolutional decoder, cropped to length."""

    def __init__(self, params: Conv1dParams, sample_shape: tuple[int, ...]):
        super().__init__(params, sample_shape)
        if len(sample_shape) == 1:
            channels, length = 1, sample_shape[0]  # a flat vector: one channel
        elif len(sample_shape) == 2:
            channels, length = sample_shape
        else:
            raise ParamsError(
                f"Model 'conv1d' reads windows of a series (channels, time steps) or flat "
                f"vectors, not samples of shape {tuple(sample_shape)}."
            )
        self.length = length
        self.in_shape = (channels, length)
        widths, k, depth = params.widths(), params.kernel_size, params.layers
        self.pad = padded_size(length, depth) - length
        layers: list[nn.Module] = []
        c = channels
        for width in widths:
            layers += [nn.Conv1d(c, width, k, padding=k // 2), nn.ReLU(), nn.MaxPool1d(2)]
            c = width
        self.features = nn.Sequential(*layers)
        self.start = (c, (length + self.pad) // 2**depth)
        self.head = nn.Linear(math.prod(self.start), params.code_size)
        self.code_act = nn.Sigmoid() if self.sparse_code else nn.Identity()
        self.expand = nn.Linear(params.code_size, math.prod(self.start))
        up: list[nn.Module] = [nn.ReLU()]
        chans = list(reversed(widths))
        for i in range(depth):
            nxt = chans[i + 1] if i + 1 < depth else chans[-1]
            up += [
                nn.Upsample(scale_factor=2, mode="nearest"),
                nn.Conv1d(c, nxt, k, padding=k // 2),
            ]
            up.append(nn.ReLU())
            c = nxt
        up.append(nn.Conv1d(c, channels, k, padding=k // 2))
        self.body = nn.Sequential(*up)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        h = x.reshape(x.shape[0], *self.in_shape)
        if self.pad:
            h = F.pad(h, (0, self.pad))
        return self.code_act(self.head(self.features(h).flatten(1)))

    def decode_logits(self, z: torch.Tensor) -> torch.Tensor:
        h = self.body(self.expand(z).reshape(z.shape[0], *self.start))
        return h[:, :, : self.length].reshape(z.shape[0], *self.sample_shape)


SPEC = ModelSpec(
    id="conv1d",
    name="1-D convolutional autoencoder",
    description="Convolutions along time down to a code and back up, for windows of a time "
    "series (channels × time steps); works on any window length.",
    params=Conv1dParams,
    factory=Conv1dAutoencoder,
    accepts=("flat",),
    help=HELP,
)


@hookimpl
def register_models(register):
    """Register the 1-D convolutional autoencoder."""
    register(SPEC)
