"""The network of the overcomplete autoencoder (torch), imported by the model's first build.

Its spec, parameters and help are in ``aelab_plugins.overcomplete``, which lists the model without
importing torch."""

from __future__ import annotations

from torch import nn

from aelab.blocks import MLPAutoencoder
from aelab.errors import ParamsError
from aelab.params import Params


class OvercompleteAutoencoder(MLPAutoencoder):
    """MLP autoencoder with a sigmoid code wider than the input."""

    code_activation = nn.Sigmoid

    @staticmethod
    def code_size_for(params: Params, n_in: int) -> int:
        if params.code_size == 0:
            return 2 * n_in
        if params.code_size <= n_in:
            raise ParamsError(
                f"A code of {params.code_size} units is not larger than the input's {n_in} "
                f"values, so this is not overcomplete; choose a code size above {n_in} (or 0 for "
                "twice the input), or use the undercomplete 'autoencoder' model."
            )
        return params.code_size
