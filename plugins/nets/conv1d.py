"""The network of the 1-D convolutional autoencoder (torch), imported by the model's first build.

Its spec, parameters and help are in ``aelab_plugins.conv1d``, which lists the model without
importing torch."""

from __future__ import annotations

import math
from dataclasses import replace

import torch
import torch.nn.functional as F
from aelab_plugins.conv1d import Conv1dParams
from torch import nn

from aelab.blocks import ReconstructionAutoencoder, padded_size
from aelab.errors import ParamsError
from aelab.models import GraphSpec, _Verb


def _planar(layers: nn.Sequential) -> nn.Sequential:
    """The same layers over (channels, 1, time): each 1-D convolution, pooling and upsampling
    as its 2-D form with a height of 1, the weights copied."""
    out: list[nn.Module] = []
    for m in layers:
        if isinstance(m, nn.Conv1d):
            conv = nn.Conv2d(
                m.in_channels, m.out_channels, (1, m.kernel_size[0]), padding=(0, m.padding[0])
            ).to(m.weight.device)
            with torch.no_grad():
                conv.weight.copy_(m.weight.unsqueeze(2))
                conv.bias.copy_(m.bias)
            out.append(conv)
        elif isinstance(m, nn.MaxPool1d):
            out.append(nn.MaxPool2d((1, m.kernel_size)))
        elif isinstance(m, nn.Upsample):
            out.append(nn.Upsample(scale_factor=(1.0, float(m.scale_factor)), mode=m.mode))
        else:
            out.append(m)
    return nn.Sequential(*out)


class Conv1dAutoencoder(ReconstructionAutoencoder):
    """1-D convolutional encoder → dense code → 1-D convolutional decoder, cropped to length.

    Its exported graphs run the same network in 2-D form (see ``graphs``).
    """

    planar = False  # True in the 2-D twin that export traces

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
        h = x.reshape(x.shape[0], *self._inner(self.in_shape))
        if self.pad:
            h = F.pad(h, (0, self.pad))
        return self.code_act(self.head(self.features(h).flatten(1)))

    def decode_logits(self, z: torch.Tensor) -> torch.Tensor:
        h = self.body(self.expand(z).reshape(z.shape[0], *self._inner(self.start)))
        return h[..., : self.length].reshape(z.shape[0], *self.sample_shape)

    def _inner(self, shape: tuple[int, int]) -> tuple[int, ...]:
        """A (channels, time) shape as the layers take it: (channels, 1, time) when planar."""
        return (shape[0], 1, shape[1]) if self.planar else shape

    def graphs(self) -> list[GraphSpec]:
        """The usual graphs, traced from a 2-D twin with the same weights: onnxruntime runs
        2-D convolutions in its blocked (NCHWc) layout and 1-D ones not, so the 2-D graph is
        1.9x faster at batch 1024 on one thread (8 vs 15 ms). torch is faster the other way
        round (1-D twice as fast at inference), so training and ``reconstruct`` stay 1-D."""
        twin = Conv1dAutoencoder(self.params, self.sample_shape)
        twin.load_state_dict(self.state_dict())
        twin.features, twin.body = _planar(self.features), _planar(self.body)
        twin.planar = True
        twin.to(next(self.parameters()).device).train(self.training)
        return [replace(g, module=_Verb(twin, g.module.verb)) for g in super().graphs()]
