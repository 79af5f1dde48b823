"""aelab's conformance kit on this plugin, plus a test of the property that defines the model.

`pytest` in the plugin's folder runs these; aelab's own suite runs them too.
"""

from __future__ import annotations

import pytest
import torch
from aelab_tied import SPEC

from aelab.data import Dataset, load_data
from aelab.testing import check_all, conformance_report


def digits(kind: str = "image") -> Dataset:
    """64 digits, as 1×8×8 images or as flat rows of 64 values in [0, 1]."""
    data = load_data("digits").subset(range(64))
    if kind == "flat":
        data = Dataset("digits-flat", data.x.reshape(len(data), -1), "flat", labels=data.labels)
    return data


@pytest.mark.parametrize("kind", ["image", "flat"])
def test_conformance(kind, tmp_path):
    """Spec, schema, one training step, validation, every graph, save and load: all at once."""
    check_all(SPEC, digits(kind), tmp_path)


def test_conformance_off_the_defaults():
    """The same checks with the shared noise switched on and another activation and depth."""
    params = {"noise": 0.2, "activation": "relu", "layers": 1, "nodes": 32}
    assert conformance_report(SPEC, digits(), params=params) == []


def test_decoder_reuses_the_encoder_weights():
    """Tied weights: one matrix per layer, so the decoder follows any change to the encoder."""
    model = SPEC.build({"layers": 1, "nodes": 32, "code_size": 4}, (1, 8, 8), "image")
    assert [tuple(w.shape) for w in model.weights] == [(32, 64), (4, 32)]
    z = torch.ones(2, 4)
    before = model.decode(z)
    with torch.no_grad():
        model.weights[-1].add_(1.0)
    assert not torch.equal(before, model.decode(z))
