"""Generative adversarial networks: a fully connected GAN and a DCGAN-style convolutional one."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from aelab.hookspecs import hookimpl
from aelab.params import Params
from aelab.specs import ModelSpec

GAME = """\
**How it works.** Two networks play a game. The generator G turns noise z ~ N(0, I) into a
sample G(z); the discriminator D outputs a logit saying how real its input looks. Each training
step first updates D, then G:

  L_D = −log D(x) − log(1 − D(G(z)))      (real label 1 − s with one-sided label smoothing s)
  L_G = −log D(G(z))                      (the non-saturating loss)

The non-saturating form gives G strong gradients early on, when D easily spots fakes (the
original min-max form −log(1 − D(G(z))) would vanish there). Stabilisers: label smoothing keeps
D from becoming over-confident, D and G get their own learning rates (the training learning rate
is not used), and optional instance noise blurs the boundary between real and fake. With a tanh
output the data is mapped to [−1, 1] for D (and samples back to [0, 1]); a sigmoid output works
in [0, 1] directly.
"""

WATCH = """
**What it gives.** New samples only: G maps noise to data and nothing maps data back to noise,
and there is no likelihood to score an input; its samples are usually sharper than a VAE's.
Training is a balance that can oscillate or settle on a few outputs (mode collapse: samples
nearly identical); watch both losses and the samples. The lab warns when the samples' spread
falls far below the data's; then train longer, lower D's learning rate or raise G's.

**Good for.** Generating realistic new samples, data augmentation, and the study of adversarial
training.
"""

HELP = (
    GAME
    + """
**This model.** Fully connected networks, so any data (flat or images): G is a stack of dense
layers with batch normalisation and ReLU, D one with leaky ReLU. Defaults: both networks learn at
1e-3 with Adam β₁ = 0 (no momentum). On digits the DCGAN rates (2e-4, β₁ = 0.5) leave this model
with noisy samples, near half of them one digit, after the default 10 epochs; these defaults give
samples as varied as the data in the same time (benchmarks/results/collapse.md).
"""
    + WATCH
)

DCGAN_HELP = (
    GAME
    + """
**This model.** The DCGAN recipe for images: G maps z to a small feature map and upsamples it
(nearest-neighbour + convolution, or transposed convolution) with batch normalisation and ReLU;
D uses strided convolutions with batch normalisation and leaky ReLU, no pooling; both networks
learn at 2e-4 with Adam β₁ = 0.5.
"""
    + WATCH
)


class GANParams(Params):
    """Hyperparameters of the fully connected GAN."""

    code_size: int = Field(
        16,
        ge=1,
        le=1024,
        title="Noise size",
        description="Dimensions of the noise z ~ N(0, I) fed to the generator.",
    )
    loss: Literal["bce"] = Field(
        "bce",
        title="Adversarial loss",
        description="Binary cross-entropy on the discriminator's logits, with the non-saturating "
        "generator loss −log D(G(z)).",
    )
    noise: float = Field(
        0.0,
        ge=0.0,
        le=1.0,
        title="Instance noise σ",
        description="Standard deviation of Gaussian noise added to every input of the "
        "discriminator (real and generated) during training; softens an over-confident D.",
    )
    layers: int = Field(
        2,
        ge=0,
        le=8,
        title="Hidden layers",
        description="Hidden layers of the generator between the noise and the output; the "
        "discriminator has as many between the data and its logit. 0 makes both a single layer.",
    )
    nodes: int | list[int] = Field(
        128,
        title="Nodes per layer",
        description="Units in each hidden layer: one number for every layer, or a list with one "
        "width per layer from the generator's noise side (for example [64, 256]); the "
        "discriminator uses the same widths in reverse, from the data side.",
    )
    lr_generator: float = Field(
        1e-3,
        gt=0.0,
        le=1.0,
        title="Generator learning rate",
        description="Step size of the generator's optimizer (a GAN ignores the training learning "
        "rate). Too low and G barely moves from its first, near-constant output (mode "
        "collapse); 1e-3 gives varied digits within 10 epochs.",
    )
    lr_discriminator: float = Field(
        1e-3,
        gt=0.0,
        le=1.0,
        title="Discriminator learning rate",
        description="Step size of the discriminator's optimizer (a GAN ignores the training "
        "learning rate); lower it when D wins too easily and G's samples stop improving.",
    )
    beta1: float = Field(
        0.0,
        ge=0.0,
        lt=1.0,
        title="Adam β₁",
        description="Momentum of Adam/AdamW for both networks. Momentum makes the two-player "
        "game oscillate: 0 (none) trains this GAN fastest and most stably on digits; the DCGAN "
        "recipe uses 0.5, Adam's own default is 0.9.",
    )
    label_smoothing: float = Field(
        0.1,
        ge=0.0,
        le=0.5,
        title="Label smoothing s",
        description="One-sided label smoothing: real samples are labelled 1 − s for the "
        "discriminator, which keeps it from becoming over-confident.",
    )
    output: Literal["tanh", "sigmoid"] = Field(
        "tanh",
        title="Generator output",
        description="tanh: G outputs [−1, 1] and the data is mapped there for D (the DCGAN "
        "convention); sigmoid: G outputs [0, 1], the data's own range.",
    )


class DCGANParams(GANParams):
    """Hyperparameters of the DCGAN: conv stages instead of dense layers."""

    layers: int = Field(
        2,
        ge=1,
        le=4,
        title="Conv stages",
        description="Stride-2 stages in each network; each doubles (G) or halves (D) the image size.",
    )
    nodes: int | list[int] = Field(
        32,
        title="Channels per stage",
        description="Feature maps per stage, from the image side: one number or one per stage.",
    )
    lr_generator: float = Field(
        2e-4,
        gt=0.0,
        le=1.0,
        title="Generator learning rate",
        description="Step size of the generator's optimizer (a GAN ignores the training learning "
        "rate); 2e-4 is the DCGAN recipe's.",
    )
    lr_discriminator: float = Field(
        2e-4,
        gt=0.0,
        le=1.0,
        title="Discriminator learning rate",
        description="Step size of the discriminator's optimizer (a GAN ignores the training "
        "learning rate); 2e-4 is the DCGAN recipe's.",
    )
    beta1: float = Field(
        0.5,
        ge=0.0,
        lt=1.0,
        title="Adam β₁",
        description="Momentum of Adam/AdamW for both networks; the DCGAN recipe uses 0.5 "
        "instead of 0.9, which damps the oscillations of the two-player game.",
    )
    upsampling: Literal["nearest", "transpose"] = Field(
        "nearest",
        title="Generator upsampling",
        description="nearest: nearest-neighbour upsampling then a 3×3 convolution (no "
        "checkerboard artefacts; trains more stably on small images); transpose: the original "
        "DCGAN's 4×4 transposed convolutions with stride 2.",
    )


SPEC = ModelSpec(
    id="gan",
    name="GAN (fully connected)",
    description="A generator learns to turn noise into data by fooling a discriminator trained "
    "to tell real from generated samples.",
    params=GANParams,
    factory="aelab_plugins.nets.gan:GAN",
    capabilities=("decode", "sample"),
    help=HELP,
)

DCGAN_SPEC = ModelSpec(
    id="dcgan",
    name="DCGAN (convolutional GAN)",
    description="A GAN for images with a convolutional generator that upsamples and a strided-"
    "convolution discriminator, following the DCGAN recipe.",
    params=DCGANParams,
    factory="aelab_plugins.nets.gan:DCGAN",
    capabilities=("decode", "sample"),
    accepts=("image",),
    help=DCGAN_HELP,
)


@hookimpl
def register_models(register):
    """Register the fully connected GAN and the DCGAN."""
    register(SPEC)
    register(DCGAN_SPEC)


# The network lives in aelab_plugins.nets.gan, imported on the first build; its classes stay
# importable from this module, as before the split (imported when first asked for).
_NETWORK = ("GAN", "DCGAN")


def __getattr__(name: str):
    if name in _NETWORK:
        from .nets import gan as network

        return getattr(network, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
