"""The parameter groups of the shared building blocks (noise and corruption, sparsity, the
contractive penalty, convolutional stages), torch-free: a plugin's spec module builds its Params
from them without importing the networks. ``aelab.blocks`` re-exports every one."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from .params import Params


class CorruptionParams(Params):
    """Input corruption for denoising: its kind, and its strength."""

    corruption: Literal["gaussian", "mask", "salt_pepper"] = Field(
        "gaussian",
        title="Corruption",
        description="How training inputs are corrupted: gaussian adds ε ~ N(μ, σ²) to every value; "
        "mask sets a fraction of the values to 0; salt_pepper sets a fraction to 0 or 1.",
    )
    noise_mean: float = Field(
        0.0,
        ge=-1.0,
        le=1.0,
        title="Noise mean μ",
        description="Mean μ of the Gaussian noise (gaussian corruption only); 0 is unbiased noise.",
    )
    corrupt_fraction: float = Field(
        0.0,
        ge=0.0,
        le=0.95,
        title="Corrupted fraction",
        description="Share of input values hit by mask or salt_pepper corruption (0.2-0.5 is "
        "typical); unused by gaussian corruption, whose strength is the noise level σ.",
    )

    def corruption_strength(self) -> float:
        """σ for gaussian corruption, the corrupted fraction otherwise."""
        return self.noise if self.corruption == "gaussian" else self.corrupt_fraction


class SparsityParams(Params):
    """Sparsity penalties on the code activations."""

    l1_weight: float = Field(
        0.0,
        ge=0.0,
        le=10.0,
        title="L1 weight λ",
        description="Weight λ of the L1 penalty λ·meanⱼ|zⱼ| on the code activations, which pushes "
        "most of them towards zero for any one input (0.01-0.1 is typical). 0 turns it off.",
    )
    kl_weight: float = Field(
        0.0,
        ge=0.0,
        le=10.0,
        title="KL sparsity weight β",
        description="Weight β of the penalty β·meanⱼ KL(ρ‖ρ̂ⱼ), which pulls each code unit's mean "
        "activation ρ̂ⱼ over a batch towards the target ρ (0.1-3 is typical). 0 turns it off.",
    )
    sparsity_target: float = Field(
        0.05,
        gt=0.0,
        lt=1.0,
        title="Target activation ρ",
        description="The mean activation ρ each code unit should have over the data (0.01-0.1: "
        "each unit fires for a few inputs only). Used by the KL penalty.",
    )


class ContractiveParams(Params):
    """The contractive penalty on the encoder's Jacobian."""

    contractive_weight: float = Field(
        0.0,
        ge=0.0,
        le=10.0,
        title="Contractive weight λ",
        description="Weight λ of λ·‖J_f(x)‖²_F, the squared Frobenius norm of the encoder's "
        "Jacobian: the code is made insensitive to small changes of the input. 0 turns it off.",
    )


class ConvParams(CorruptionParams, SparsityParams):
    """A convolutional autoencoder: conv stages instead of dense layers, with optional noise and
    sparsity (the combinations the literature recommends)."""

    layers: int = Field(
        2,
        ge=1,
        le=4,
        title="Conv stages",
        description="Convolution → ReLU → 2×2 max-pool stages in the encoder; the decoder mirrors "
        "them with upsampling. Each stage halves the image's height and width.",
    )
    nodes: int | list[int] = Field(
        16,
        title="Channels per stage",
        description="Feature maps in each conv stage: one number for every stage, or a list "
        "with one count per stage from the input side (for example [16, 32]).",
    )
    upsampling: Literal["nearest", "transpose"] = Field(
        "nearest",
        title="Decoder upsampling",
        description="nearest: nearest-neighbour upsampling then a 3×3 convolution (smooth, no "
        "checkerboard artefacts); transpose: a learned 4×4 transposed convolution with stride 2.",
    )
