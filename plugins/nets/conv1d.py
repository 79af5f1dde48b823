"""The network of the 1-D convolutional autoencoder (torch), imported by the model's first build.

Its spec, parameters and help are in ``aelab_plugins.conv1d``, which lists the model without
importing torch."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from aelab_plugins.conv1d import Conv1dParams
from torch import nn

from aelab.blocks import ReconstructionAutoencoder, padded_size
from aelab.errors import ParamsError


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
