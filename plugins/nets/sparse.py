"""The network of the sparse autoencoder (torch), imported by the model's first build.

Its spec, parameters and help are in ``aelab_plugins.sparse``, which lists the model without
importing torch."""

from __future__ import annotations

from torch import nn

from aelab.blocks import MLPAutoencoder


class SparseAutoencoder(MLPAutoencoder):
    """MLP autoencoder with a sigmoid code and L1 / KL sparsity penalties."""

    code_activation = nn.Sigmoid
    code_kind = "sparse"
