"""The network of the linear autoencoder (torch), imported by the model's first build.

Its spec, parameters and help are in ``aelab_plugins.linear``, which lists the model without
importing torch."""

from __future__ import annotations

from aelab.blocks import MLPAutoencoder


class LinearAutoencoder(MLPAutoencoder):
    """Affine encoder and decoder with no activation and a linear output."""

    activation = None
    output = "linear"
