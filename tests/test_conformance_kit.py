"""The conformance kit itself: it reports every finding at once, on the batch-dict contract."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pytest
import torch
from pydantic import Field
from torch import nn

from aelab import testing
from aelab.blocks import MLPAutoencoder, mlp
from aelab.data import Dataset, load_data
from aelab.models import GraphSpec, Model, ModelSpec, _Verb
from aelab.params import Params
from aelab.plugins import get_models

HELP = (
    "A model written to break the contract in many ways at once, so the conformance kit has "
    "something to report on every line; never registered with aelab."
)


def _digits(n: int = 32, labels: bool = True) -> Dataset:
    data = load_data("digits").subset(range(n))
    return data if labels else Dataset("nolabels", data.x, data.kind)


class SloppyParams(Params):
    rate: float = Field(0.1, title="Rate", description="Unbounded on purpose.")
    mode: str = Field("a", title="Mode")  # no description


class Sloppy(MLPAutoencoder):
    """An autoencoder with one fault per rule of the contract."""

    code_kind = "fuzzy"

    def training_step(self, batch: dict[str, torch.Tensor], optimizer: str) -> dict[str, Any]:
        x = batch["x"]
        z = self.encode(x + 0.1 * torch.randn_like(x))  # torch's global generator
        recon = (torch.sigmoid(self.decode_logits(z)) - x).pow(2).mean()
        return {
            "loss": recon,
            "reconstruction": recon,
            "metrics": {"broken": float("nan"), "per_unit": z.detach().mean(0)},
        }

    def graphs(self) -> list[GraphSpec]:
        return [
            # Named like a decoder but declared "other": the kit keys its checks on the role.
            GraphSpec("decoder", nn.Identity(), "code", (5,), ["out"], None, role="other"),
            GraphSpec("encoder", _Verb(self, "reconstruct"), "input", self.sample_shape, ["code"]),
            GraphSpec(
                "gen",
                nn.Linear(3, 7),
                "noise",
                (3,),
                ["sample"],
                (0.0, 1.0),
                role="sampler",
                prior="normal",
            ),
        ]


SLOPPY = ModelSpec(
    id="sloppy",
    name="Sloppy",
    description="Breaks the contract on purpose.",
    params=SloppyParams,
    factory=Sloppy,
    help=HELP,
)


def test_kit_reports_every_finding_at_once(tmp_path):
    data = _digits()
    with pytest.raises(AssertionError) as info:
        testing.check_all(SLOPPY, data, tmp_path)
    message = str(info.value)
    expected = [
        "numeric parameter 'rate' lacks bounds",
        "parameter 'mode' lacks a description",
        "code_kind is 'fuzzy'",
        "draws from torch's global random generator",
        "self.randn_like(t)",  # the finding says how to fix it
        "metric 'broken' of training_step for 'model' is not finite",
        "metric 'per_unit' of training_step for 'model' is a tensor of shape (8,)",
        "graph 'encoder' (encoder) gives codes of shape (1, 8, 8)",
        "graph 'gen' (sampler) outputs shape (7,)",
        "graph 'gen' (sampler) takes (3,) but code_shape is (8,)",
        "graph 'gen' has prior 'normal' but a bounded input",
    ]
    for phrase in expected:
        assert phrase in message, phrase
    assert message.startswith("Model 'sloppy' fails ")
    assert message.count("\n  - ") >= len(expected)
    assert "graph 'decoder'" not in message  # role "other": no decoder checks by name
    # The report is the same list, without raising.
    report = testing.conformance_report(SLOPPY, data, tmp_path)
    assert len(report) == message.count("\n  - ")


def test_each_check_collects_its_own_findings():
    data = _digits()
    with pytest.raises(AssertionError) as info:
        testing.check_spec(SLOPPY)
    assert "'rate'" in str(info.value) and "'mode'" in str(info.value)
    with pytest.raises(AssertionError) as info:
        testing.check_build_and_step(SLOPPY, data, {"rate": 0.1})
    text = str(info.value)
    assert "code_kind" in text and "global random generator" in text and "'broken'" in text
    model = testing.build(SLOPPY, data)
    with pytest.raises(AssertionError) as info:
        testing.check_graphs(SLOPPY, data, model)
    assert "(encoder)" in str(info.value) and "(sampler)" in str(info.value)


def test_kit_leaves_the_global_generator_alone():
    before = torch.random.get_rng_state()
    testing.conformance_report(SLOPPY, _digits())
    assert torch.equal(before, torch.random.get_rng_state())


def test_a_conforming_model_has_no_findings(tmp_path):
    spec = get_models()["vae"]
    assert testing.conformance_report(spec, _digits(), tmp_path) == []
    testing.check_all(spec, _digits(), tmp_path / "again")


def test_labelled_model_on_unlabelled_data_is_a_finding():
    report = testing.conformance_report(get_models()["cvae"], _digits(labels=False))
    assert any("batch_fields lists 'y'" in p for p in report), report


def test_metrics_and_batch_dtypes_reach_the_step():
    seen: dict[str, Any] = {}

    class Spy(MLPAutoencoder):
        batch_fields = ("x", "y")

        def training_step(self, batch, optimizer):
            seen.update({k: v.dtype for k, v in batch.items()})
            out = super().training_step(batch, optimizer)
            out["metrics"] = {"code_mean": self.encode(batch["x"]).detach().mean(), "n": 3}
            return out

    spec = ModelSpec("spy", "Spy", "Records its batches.", Params, Spy, help=HELP)
    assert testing.conformance_report(spec, _digits()) == []
    assert seen == {"x": torch.float32, "y": torch.int64}


def test_legacy_plugin_is_adapted_and_passes(tmp_path):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")

        class Legacy(Model):
            needs_labels = True

            def __init__(self, params, sample_shape):
                super().__init__(params, sample_shape)
                n = int(np.prod(sample_shape))
                self.encoder = mlp([n + 10, params.code_size])
                self.decoder = mlp([params.code_size, n])

            def encode(self, x):
                zeros = x.new_zeros(x.shape[0], 10)
                return self.encoder(torch.cat([x.reshape(x.shape[0], -1), zeros], 1))

            def decode(self, z):
                return torch.sigmoid(self.decoder(z)).reshape(z.shape[0], *self.sample_shape)

            def training_step(self, x, optimizer, y=None):
                assert y is not None and y.dtype == torch.int64
                recon = (self.reconstruct(x) - x).pow(2).mean()
                return {"loss": recon, "reconstruction": recon}

    assert any(issubclass(w.category, DeprecationWarning) for w in caught)
    assert Legacy.batch_fields == ("x", "y")
    spec = ModelSpec(
        "legacy", "Legacy", "Written for the first contract.", Params, Legacy, help=HELP
    )
    testing.check_all(spec, _digits(), tmp_path)
