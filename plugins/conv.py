"""The convolutional autoencoder: convolutions and pooling down, upsampling back, any image size."""

from __future__ import annotations

from aelab.hookspecs import hookimpl
from aelab.param_groups import ConvParams
from aelab.specs import ModelSpec

HELP = """\
**How it works.** The encoder applies stages of 3×3 convolution → ReLU → 2×2 max-pooling (each
halving height and width), then a linear layer to the code; the decoder maps the code to a small
feature map and doubles it back stage by stage, by nearest-neighbour upsampling + convolution or
by transposed convolution, ending in a sigmoid. Images whose size is not a multiple of 2^stages
are zero-padded at the input and cropped at the output, so the output always has the input's
shape (8×8 digits, 16×16 shapes, 28×28 MNIST, or odd sizes). The loss is the reconstruction error

  L = ‖x − g(f(x̃))‖² + λ · meanⱼ|zⱼ| + β · meanⱼ KL(ρ‖ρ̂ⱼ)

where the optional noise (x̃ = corrupted x) makes it a convolutional *denoising* autoencoder and
the optional L1/KL penalties a *sparse* one, as the literature suggests combining them.

**Why convolutions.** Weights are shared across positions and see local neighbourhoods, so the
model needs far fewer parameters than a dense one and respects the image's 2-D structure.

**Good for.** Images: compression, denoising, features, anomaly detection on pictures.
"""


SPEC = ModelSpec(
    id="conv",
    name="Convolutional autoencoder",
    description="Convolution, ReLU and pooling down to a code, upsampling back up; works on any "
    "image size and combines with noise and sparsity.",
    params=ConvParams,
    factory="aelab.blocks:ConvAutoencoder",
    capabilities=("encode", "decode", "reconstruct"),
    accepts=("image",),
    help=HELP,
)


@hookimpl
def register_models(register):
    """Register the convolutional autoencoder."""
    register(SPEC)
