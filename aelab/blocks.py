"""Shared building blocks written once: layer stacks, the parameter groups of the regularisers and
the reconstruction autoencoders (fully connected and convolutional) that variants declare on top
of. The losses, corruption and penalties live in ``aelab.losses``, the parameter groups in the
torch-free ``aelab.param_groups``; both are re-exported here."""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .losses import (  # re-exported: plugins import them from aelab.blocks too
    corrupt,
    jacobian_frobenius_sq,
    kl_sparsity,
    l1_penalty,
    reconstruction_loss,
    sigmoid_jacobian_sq,
)
from .models import METRICS, Model
from .param_groups import (  # noqa: F401 - re-exported: plugins import them from aelab.blocks
    ContractiveParams,
    ConvParams,
    CorruptionParams,
    SparsityParams,
)
from .params import Params

# -- layer stacks ---------------------------------------------------------------------------


def mlp(
    sizes: list[int], activation: type[nn.Module] | None = nn.ReLU, batchnorm: bool = False
) -> nn.Sequential:
    """Linear layers through ``sizes`` with an activation between them (none after the last),
    optionally batch-normalised before each activation."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            if batchnorm:
                layers.append(nn.BatchNorm1d(b))
            if activation is not None:
                layers.append(activation())
    return nn.Sequential(*layers)


def padded_size(size: int, depth: int) -> int:
    """The smallest multiple of 2**depth that is at least ``size`` (so every pooling halves evenly)."""
    step = 2**depth
    return -(-size // step) * step


class PadTo(nn.Module):
    """Zero-pads images on the bottom/right to a fixed size decided when the model is built."""

    def __init__(self, height: int, width: int, target_h: int, target_w: int):
        super().__init__()
        self.pad = (0, target_w - width, 0, target_h - height)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.pad(x, self.pad) if any(self.pad) else x


class ConvEncoder(nn.Module):
    """(conv 3×3 → ReLU → max-pool 2) per stage, then a linear map of the feature map to a vector."""

    def __init__(
        self,
        sample_shape: tuple[int, ...],
        channels: list[int],
        out_size: int,
        strided: bool = False,
    ):
        super().__init__()
        c, h, w = sample_shape
        depth = len(channels)
        self.hp, self.wp = padded_size(h, depth), padded_size(w, depth)
        self.pad = PadTo(h, w, self.hp, self.wp)
        layers: list[nn.Module] = []
        for i, width in enumerate(channels):
            if (
                strided
            ):  # DCGAN discriminator: strided 4×4 convs, batch norm after the first, leaky ReLU
                layers.append(nn.Conv2d(c, width, 4, stride=2, padding=1))
                layers += [nn.BatchNorm2d(width)] if i > 0 else []
                layers.append(nn.LeakyReLU(0.2))
            else:
                layers += [nn.Conv2d(c, width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)]
            c = width
        self.features = nn.Sequential(*layers)
        self.feature_shape = (c, self.hp // 2**depth, self.wp // 2**depth)
        self.head = nn.Linear(math.prod(self.feature_shape), out_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(self.pad(x)).flatten(1))


class ConvDecoder(nn.Module):
    """A linear map to a small feature map, then (upsample ×2 → conv → ReLU) per stage, cropped.

    ``upsample`` is ``transpose`` (learned 4×4 transposed convolution, as in DCGAN) or ``nearest``
    (nearest-neighbour upsampling then a 3×3 convolution, which avoids checkerboard artefacts).
    """

    def __init__(
        self,
        in_size: int,
        sample_shape: tuple[int, ...],
        channels: list[int],
        upsample: str = "nearest",
        batchnorm: bool = False,
    ):
        super().__init__()
        c_out, self.h, self.w = sample_shape
        depth = len(channels)
        hp, wp = padded_size(self.h, depth), padded_size(self.w, depth)
        chans = list(reversed(channels))
        self.start = (chans[0], hp // 2**depth, wp // 2**depth)
        self.head = nn.Linear(in_size, math.prod(self.start))
        layers: list[nn.Module] = [nn.BatchNorm2d(chans[0])] if batchnorm else []
        layers.append(nn.ReLU())
        c = chans[0]
        for i in range(depth):
            nxt = chans[i + 1] if i + 1 < depth else chans[-1]
            if upsample == "transpose":
                layers.append(nn.ConvTranspose2d(c, nxt, 4, stride=2, padding=1))
            else:
                layers += [
                    nn.Upsample(scale_factor=2, mode="nearest"),
                    nn.Conv2d(c, nxt, 3, padding=1),
                ]
            if batchnorm:
                layers.append(nn.BatchNorm2d(nxt))
            layers.append(nn.ReLU())
            c = nxt
        layers.append(nn.Conv2d(c, c_out, 3, padding=1))
        self.body = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        start = self.head(z).reshape(z.shape[0], *self.start)
        if _channels_last(self.body):
            # The linear head gives a plain map; laid out like the weights from the start, the
            # ReLU, upsampling and batch norm before the first convolution run channels-last too
            # (and their backward passes, which are slow on mixed layouts), instead of the
            # convolution converting its input every step.
            start = start.contiguous(memory_format=torch.channels_last)
        out = self.body(start)
        return out[:, :, : self.h, : self.w]  # crop the padding back off: output shape == input


def _channels_last(body: nn.Sequential) -> bool:
    """Whether the first convolution of ``body`` holds channels-last weights (see aelab.layout)."""
    for m in body:
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            w = m.weight
            return not w.is_contiguous() and w.is_contiguous(memory_format=torch.channels_last)
    return False


# -- sampling helpers -----------------------------------------------------------------------


def interpolate_codes(
    model: Model, x1: torch.Tensor, x2: torch.Tensor, steps: int = 8
) -> torch.Tensor:
    """Decodes ``steps`` codes on the straight line between the codes of x1 and x2 (inclusive)."""
    with torch.no_grad():
        one = len(model.sample_shape)  # a single sample lacks the batch axis
        z1 = model.encode(x1.unsqueeze(0) if x1.dim() == one else x1)
        z2 = model.encode(x2.unsqueeze(0) if x2.dim() == one else x2)
        t = torch.linspace(0, 1, steps, dtype=z1.dtype, device=z1.device).unsqueeze(1)
        return model.decode(z1[:1] * (1 - t) + z2[:1] * t)


# -- reconstruction autoencoders ------------------------------------------------------------


class ReconstructionAutoencoder(Model):
    """An encoder, a decoder and a training step: reconstruction error + penalties on the code.

    Regularisers are read from the params that declare them (noise, corruption, sparsity,
    contraction), so a variant only picks its parameter groups and its layers.
    """

    output: str = "sigmoid"  # "linear" for a linear autoencoder

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def decode_logits(self, z: torch.Tensor) -> torch.Tensor:
        """Decoder output before the output activation, in the data's shape."""
        raise NotImplementedError

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        logits = self.decode_logits(z)
        return logits if self.output == "linear" else torch.sigmoid(logits)

    def __init__(self, params: Params, sample_shape: tuple[int, ...]):
        super().__init__(params, sample_shape)
        # Read the regularisers once: params are fixed after build, and getattr on a pydantic
        # model that lacks a field raises (and formats) an exception, on every training step.
        self.reg = {
            name: getattr(params, name, default)
            for name, default in (
                ("corruption", "gaussian"),
                ("noise_mean", 0.0),
                ("corrupt_fraction", 0.0),
                ("l1_weight", 0.0),
                ("kl_weight", 0.0),
                ("sparsity_target", 0.05),
                ("contractive_weight", 0.0),
            )
        }
        r = self.reg
        gaussian = r["corruption"] == "gaussian"
        self.corrupts = (
            (params.noise > 0 or r["noise_mean"] != 0) if gaussian else r["corrupt_fraction"] > 0
        )
        self.sparse_code = r["l1_weight"] > 0 or r["kl_weight"] > 0

    def corrupt(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Training-time corruption of the input (Gaussian noise at the noise level by default),
        drawn from ``generator`` or else the model's own."""
        if not self.corrupts:
            return x
        r = self.reg
        share = self.__dict__.get("_share")
        if generator is None and share is not None:
            # Training in several processes: corrupt the global batch, the same on every
            # rank, and keep this rank's rows (see Model._noise).
            rank, world = share
            full = x.new_zeros((x.shape[0] * world, *x.shape[1:]))
            full[rank::world] = x
            return self.corrupt(full, self.generator_for(x.device))[rank::world].contiguous()
        return corrupt(
            x,
            r["corruption"],
            self.params.noise,
            r["noise_mean"],
            r["corrupt_fraction"],
            generator if generator is not None else self.generator_for(x.device),
        )

    def jacobian_sq(self, x_in: torch.Tensor, create_graph: bool = False) -> torch.Tensor:
        """Per-sample ‖J_f(x)‖²_F of the encoder (autograd; subclasses may know it exactly)."""
        return jacobian_frobenius_sq(self.encode, x_in, create_graph)

    def penalty(self, x_in: torch.Tensor, z: torch.Tensor) -> dict[str, torch.Tensor]:
        """Extra loss terms from whichever regularisers the params switch on."""
        r = self.reg
        terms: dict[str, torch.Tensor] = {}
        if r["l1_weight"] > 0:
            terms["l1"] = r["l1_weight"] * l1_penalty(z)
        if r["kl_weight"] > 0:
            terms["sparsity_kl"] = r["kl_weight"] * kl_sparsity(z, r["sparsity_target"])
        if r["contractive_weight"] > 0:
            terms["contractive"] = r["contractive_weight"] * self.jacobian_sq(x_in, True).mean()
        return terms

    def training_step(self, batch: dict[str, torch.Tensor], optimizer: str) -> dict[str, Any]:
        x = batch["x"]
        x_in = self.corrupt(x) if self.training else x
        if self.reg["contractive_weight"] > 0:
            x_in = x_in.detach().requires_grad_(True)  # the penalty differentiates the code by x
        z = self.encode(x_in)
        logits = self.decode_logits(z)
        recon = reconstruction_loss(logits, x, self.params.loss, self.output)
        penalties = self.penalty(x_in, z)
        terms: dict[str, Any] = {"reconstruction": recon, **penalties}
        # Start the sum at recon, not 0, so a plain autoencoder adds no extra op per step.
        terms["loss"] = sum(penalties.values(), recon)
        metrics = {}
        if self.sparse_code:
            # How busy the code is, next to the penalty that drives it: a figure, not a loss.
            metrics["mean_activation"] = z.detach().mean()
        if not self.training and self.output != "linear":
            # Held-out PSNR for outputs in [0, 1] (peak 1), from the reconstruction just made.
            mse = (torch.sigmoid(logits) - x).pow(2).mean()
            metrics["psnr"] = -10 * torch.log10(mse.clamp_min(1e-12))
        if metrics:
            terms[METRICS] = metrics
        return terms

    def interpolate(self, x1: torch.Tensor, x2: torch.Tensor, steps: int = 8) -> torch.Tensor:
        """Outputs decoded along the line between the codes of two inputs."""
        return interpolate_codes(self, x1, x2, steps)


class MLPAutoencoder(ReconstructionAutoencoder):
    """Fully connected encoder narrowing to the code and a mirrored decoder with a sigmoid output.

    Subclasses change the activation, the code activation or the output; everything else is
    shared.
    """

    activation: type[nn.Module] | None = nn.ReLU
    code_activation: type[nn.Module] | None = (
        None  # applied to the code (e.g. sigmoid for sparsity)
    )

    def __init__(self, params: Params, sample_shape: tuple[int, ...]):
        super().__init__(params, sample_shape)
        self.n_in = math.prod(sample_shape)
        widths = params.widths()
        code = self.code_size_for(params, self.n_in)
        self._code = code
        self.encoder = mlp([self.n_in, *widths, code], self.activation)
        self.decoder = mlp([code, *reversed(widths), self.n_in], self.activation)
        self.code_act = self.code_activation() if self.code_activation else nn.Identity()

    @staticmethod
    def code_size_for(params: Params, n_in: int) -> int:
        """Number of code units for this input size (the code_size param unless a variant says)."""
        return params.code_size

    @property
    def code_shape(self) -> tuple[int, ...]:
        return (self._code,)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        z = self.encoder(x.reshape(x.shape[0], -1))
        # A linear code skips the Identity module: one call less on every step.
        return z if self.code_activation is None else self.code_act(z)

    def decode_logits(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z).reshape(z.shape[0], *self.sample_shape)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        # The output activation goes before the reshape: in the exported graph onnxruntime then
        # fuses it into the last Gemm (one kernel less per call; the values are the same).
        h = self.decoder(z)
        h = h if self.output == "linear" else torch.sigmoid(h)
        return h.reshape(z.shape[0], *self.sample_shape)

    def jacobian_sq(self, x_in: torch.Tensor, create_graph: bool = False) -> torch.Tensor:
        # One linear layer into a sigmoid code has a closed-form Jacobian: exact and cheap.
        if len(self.encoder) == 1 and isinstance(self.code_act, nn.Sigmoid):
            h = self.encode(x_in)
            return sigmoid_jacobian_sq(h, self.encoder[0].weight)
        return super().jacobian_sq(x_in, create_graph)


class ConvAutoencoder(ReconstructionAutoencoder):
    """Convolutional encoder → dense code → convolutional decoder, cropped to the input's size."""

    def __init__(self, params: ConvParams, sample_shape: tuple[int, ...]):
        super().__init__(params, sample_shape)
        channels = params.widths()
        sparse = params.kl_weight > 0 or params.l1_weight > 0
        self.encoder = ConvEncoder(sample_shape, channels, params.code_size)
        # Sparsity penalties act on firing rates in (0, 1), as in the sparse autoencoder; a ReLU
        # code under L1 tends to die (every unit stuck at zero).
        self.code_act = nn.Sigmoid() if sparse else nn.Identity()
        self.decoder = ConvDecoder(params.code_size, sample_shape, channels, params.upsampling)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.code_act(self.encoder(x))

    def decode_logits(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)
