"""The network of the denoising autoencoder (torch), imported by the model's first build.

Its spec, parameters and help are in ``aelab_plugins.denoising``, which lists the model without
importing torch."""

from __future__ import annotations

from aelab.blocks import MLPAutoencoder


class DenoisingAutoencoder(MLPAutoencoder):
    """MLP autoencoder trained on corrupted inputs against clean targets."""
