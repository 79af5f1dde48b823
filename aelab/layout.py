"""The memory layout of a model's weights: channels-last where the device runs convolutions
faster that way, decided from what the model is made of (never from its name).

A convolution whose weights are channels-last takes any input and gives channels-last output,
so converting the weights is enough: training, inference and the applications all follow. A
model opts out (or in) with its ``memory_format`` attribute ("auto", "channels_last",
"contiguous"); ``AELAB_MEMORY_FORMAT`` overrides every model (to measure, or to test both).
"""

from __future__ import annotations

import os
from typing import Any

import torch
from torch import nn

CHOICES = ("auto", "channels_last", "contiguous")


def has_image_convolutions(model: nn.Module) -> bool:
    """Whether any layer is a 2-D (transposed) convolution."""
    return any(isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)) for m in model.modules())


def choose(model: nn.Module, device: torch.device, precision: str = "fp32") -> str:
    """channels_last or contiguous for ``model`` on ``device``: the model's or the environment's
    declaration, else channels-last for image convolutions on the CPU, or on CUDA under mixed
    precision (where tensor cores want it)."""
    wanted = os.environ.get("AELAB_MEMORY_FORMAT") or getattr(model, "memory_format", "auto")
    if wanted not in CHOICES:
        from .errors import ParamsError

        raise ParamsError(
            f"Memory format '{wanted}' is not one of {', '.join(CHOICES)} (AELAB_MEMORY_FORMAT or "
            "a model's memory_format)."
        )
    if wanted != "auto":
        return wanted
    if not has_image_convolutions(model):
        return "contiguous"
    if device.type == "cpu" or (device.type == "cuda" and precision != "fp32"):
        return "channels_last"
    return "contiguous"


def apply(model: nn.Module, device: torch.device, precision: str = "fp32") -> str:
    """Put the model's weights in the chosen layout; the choice, recorded on the model."""
    fmt = choose(model, device, precision)
    if fmt == "channels_last":
        model.to(memory_format=torch.channels_last)
    model.__dict__["layout"] = fmt
    return fmt


def contiguous_copy(model: Any) -> Any:
    """The model itself when its weights are plain, else a copy with plain weights (ONNX export
    and validation work on the layout torch would have given)."""
    import copy

    if getattr(model, "layout", "contiguous") != "channels_last":
        return model
    twin = copy.deepcopy(model)
    for t in [*twin.parameters(), *twin.buffers()]:
        # Standard strides, also where a channels-last tensor passes is_contiguous() (a size-1
        # channel axis), which would keep convolutions on their channels-last kernels.
        t.data = torch.empty_like(t.data, memory_format=torch.contiguous_format).copy_(t.data)
    twin.__dict__["layout"] = "contiguous"
    return twin
