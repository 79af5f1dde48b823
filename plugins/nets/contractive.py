"""The network of the contractive autoencoder (torch), imported by the model's first build.

Its spec, parameters and help are in ``aelab_plugins.contractive``, which lists the model without
importing torch."""

from __future__ import annotations

from torch import nn

from aelab.blocks import MLPAutoencoder


class ContractiveAutoencoder(MLPAutoencoder):
    """MLP autoencoder with a sigmoid code and a Jacobian penalty."""

    code_activation = nn.Sigmoid
