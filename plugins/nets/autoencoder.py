"""The network of the undercomplete autoencoder (torch), imported by the model's first build.

Its spec, parameters and help are in ``aelab_plugins.autoencoder``, which lists the model without
importing torch."""

from __future__ import annotations

from aelab.blocks import MLPAutoencoder
from aelab.errors import ParamsError
from aelab.params import Params


class Autoencoder(MLPAutoencoder):
    """Encoder → small code → mirrored decoder, ReLU between layers."""

    def __init__(self, params: Params, sample_shape: tuple[int, ...]):
        super().__init__(params, sample_shape)
        if params.code_size >= self.n_in:
            raise ParamsError(
                f"A code of {params.code_size} units is not smaller than the input's "
                f"{self.n_in} values, so this undercomplete autoencoder could learn to copy its "
                "input; choose a code size below "
                f"{self.n_in}, or an overcomplete model with a regulariser."
            )
