"""ONNX export: every registered model exports and validates; failures leave nothing behind."""

from __future__ import annotations

import hashlib
import json
import types
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from torch import nn

from aelab.errors import ExportError
from aelab.export import TOLERANCE, allowed_difference, export_model, export_run, exports_root
from aelab.models import GraphSpec
from aelab.plugins import get_models

MODELS = sorted(get_models())
FAKE_SPEC = types.SimpleNamespace(id="fake", name="Fake model")


def _training_data(spec):
    """A small slice of digits, as images or flattened to vectors for flat-only models."""
    from aelab.data import Dataset, load_data

    d = load_data("digits").subset(np.arange(240))
    if "image" in spec.accepts:
        return d
    flat = d.x.reshape(len(d), -1)
    return Dataset("digits", flat, "flat", d.labels, d.label_names, d.scaling, d.source)


@pytest.mark.parametrize("model_id", MODELS)
def test_every_model_trains_exports_and_validates(model_id, tmp_path):
    from aelab.train import train

    spec = get_models()[model_id]
    done = list(train(spec, None, _training_data(spec), {"epochs": 1, "batch_size": 64}))[-1]
    assert done.status == "completed", done.message
    model = done.model
    was_training = model.training
    declared = [g.name for g in model.graphs()]
    assert declared, f"{model_id} declares no graphs"

    result = export_run(done.run_id)

    assert result.folder == exports_root() / done.run_id
    manifest = json.loads((result.folder / "manifest.json").read_text())
    assert [g["name"] for g in manifest["graphs"]] == declared
    assert sorted(p.name for p in result.folder.iterdir()) == sorted(
        ["manifest.json", *(f"{n}.onnx" for n in declared)]
    )
    for entry, graph in zip(manifest["graphs"], model.graphs()):
        path = result.folder / entry["file"]
        assert hashlib.sha256(path.read_bytes()).hexdigest() == entry["sha256"]
        assert entry["exporter"] in ("dynamo", "torchscript")
        assert entry["validation"]["passed"] and entry["validation"]["max_abs_diff"] <= TOLERANCE
        assert entry["input"]["shape"] == ["batch", *graph.input_shape]
        assert [o["name"] for o in entry["outputs"]] == list(graph.output_names)
        # The file describes itself without the manifest.
        props = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
        assert props["aelab.model"] == model_id and props["aelab.graph"] == graph.name
        assert json.loads(props["aelab.params"]) == model.params.model_dump()
        assert json.loads(props["aelab.input"])["name"] == graph.input_name
        # The batch axis is dynamic: an odd batch size nobody validated still runs.
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        x = np.zeros((3, *graph.input_shape), np.float32)
        outs = session.run(None, {graph.input_name: x})
        assert all(o.shape[0] == 3 for o in outs)
    assert "| graph |" in result.summary() and all(n in result.summary() for n in declared)
    assert model.training == was_training


def test_export_records_preprocessing_and_restores_training_mode(tmp_path):
    spec = get_models()["autoencoder"]
    model = spec.build({"code_size": 4}, (1, 8, 8), "image")
    model.train()
    meta = {
        "kind": "image",
        "sample_shape": [1, 8, 8],
        "scaling": {"method": "divide", "scale": 16.0},
    }
    result = export_model(
        model,
        spec,
        model.params,
        run_id="r1",
        data_meta=meta,
        out_dir=tmp_path / "e",
        graphs=["decoder", "autoencoder"],
    )
    assert model.training is True
    names = [g["name"] for g in result.manifest["graphs"]]
    assert names == ["decoder", "autoencoder"]
    by_name = {g["name"]: g for g in result.manifest["graphs"]}
    assert by_name["autoencoder"]["input"]["preprocessing"]["scaling"] == {
        "method": "divide",
        "scale": 16.0,
    }
    assert by_name["decoder"]["input"]["preprocessing"] is None  # codes are drawn, not scaled
    assert by_name["decoder"]["input"]["range"] is None
    assert result.manifest["graphs"][0]["exporter"] == "dynamo"
    assert result.manifest["graphs"][0]["opset"] >= 18


# -- fake models for failure paths -----------------------------------------------------------
class _DataDependent(nn.Module):
    """Python control flow on a tensor value: torch.export refuses it, the tracer does not."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if float(x.abs().max()) >= 0:
            return x * 2
        return x


class _Drifting(nn.Module):
    """Adds a call counter: the ONNX graph freezes one value, so torch and ONNX disagree."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return x + float(self.calls)


class _TwoOutputs(nn.Module):
    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return x.sum(dim=1, keepdim=True), torch.tanh(x)


class _Fake(nn.Module):
    def __init__(self, graphs: list[tuple[str, nn.Module, list[str]]]):
        super().__init__()
        self.specs = graphs
        self.mods = nn.ModuleList([m for _, m, _ in graphs])
        self.sample_shape = (4,)

    def graphs(self) -> list[GraphSpec]:
        return [GraphSpec(name, mod, "input", (4,), outs) for name, mod, outs in self.specs]


def _export_fake(specs, out: Path, **kw):
    return export_model(_Fake(specs), FAKE_SPEC, {}, run_id="fake", data_meta={}, out_dir=out, **kw)


def test_multiple_outputs_are_named_and_shaped(tmp_path):
    result = _export_fake([("encoder", _TwoOutputs(), ["mean", "logvar"])], tmp_path / "e")
    outs = result.manifest["graphs"][0]["outputs"]
    assert outs == [
        {"name": "mean", "shape": ["batch", 1], "dtype": "float32"},
        {"name": "logvar", "shape": ["batch", 4], "dtype": "float32"},
    ]


def test_falls_back_to_torchscript_and_records_it(tmp_path):
    result = _export_fake([("branchy", _DataDependent(), ["out"])], tmp_path / "e")
    entry = result.manifest["graphs"][0]
    assert entry["exporter"] == "torchscript"
    assert entry["dynamo_error"]
    props = {p.key: p.value for p in onnx.load(str(result.files[0])).metadata_props}
    assert props["aelab.exporter"] == "torchscript"


def test_failed_validation_names_graph_and_leaves_nothing(tmp_path):
    out = tmp_path / "e"
    with pytest.raises(ExportError, match=r"Graph 'drift'.*differs by \d"):
        _export_fake([("ok", _TwoOutputs(), ["a", "b"]), ("drift", _Drifting(), ["out"])], out)
    assert list(tmp_path.iterdir()) == []  # neither the folder nor its temporary sibling


def test_tolerance_is_absolute_within_one_and_relative_beyond():
    assert allowed_difference(np.array([0.5, -1.0], np.float32)) == TOLERANCE
    assert allowed_difference(np.array([3.0, -2000.0], np.float32)) == pytest.approx(0.2)
    # One float32 rounding step at 1000 is 6e-5, at 2000 1.2e-4: inside the relative bound.
    assert np.spacing(np.float32(2000.0)) < allowed_difference(np.array([2000.0], np.float32))


class _Loud(nn.Module):
    """Logits in the thousands, like a discriminator trained with a very high learning rate."""

    def __init__(self, drift: float = 0.0) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 64)
        with torch.no_grad():
            self.lin.weight.mul_(3000.0)
        self.drift, self.calls = drift, 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return self.lin(x) + self.drift * self.calls


def test_large_outputs_validate_against_a_relative_tolerance(tmp_path):
    result = _export_fake([("loud", _Loud(), ["logit"])], tmp_path / "ok")
    check = result.manifest["graphs"][0]["validation"]
    assert check["tolerance"] > TOLERANCE and check["max_abs_diff"] <= check["tolerance"]
    with pytest.raises(ExportError, match=r"Graph 'loud'.*differs by"):
        _export_fake([("loud", _Loud(drift=1.0), ["logit"])], tmp_path / "bad")


def test_failed_export_keeps_previous_export_intact(tmp_path):
    out = tmp_path / "e"
    _export_fake([("ok", _TwoOutputs(), ["a", "b"])], out)
    before = (out / "manifest.json").read_bytes()
    with pytest.raises(ExportError):
        _export_fake([("drift", _Drifting(), ["out"])], out, force=True)
    assert (out / "manifest.json").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["e"]


def test_existing_export_needs_force(tmp_path):
    out = tmp_path / "e"
    _export_fake([("ok", _TwoOutputs(), ["a", "b"])], out)
    with pytest.raises(ExportError, match="already exists; pass --force"):
        _export_fake([("ok", _TwoOutputs(), ["a", "b"])], out)
    result = _export_fake([("other", _TwoOutputs(), ["a", "b"])], out, force=True)
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json", "other.onnx"]
    assert result.manifest["graphs"][0]["name"] == "other"


def test_an_empty_folder_is_used_without_force(tmp_path):
    out = tmp_path / "e"
    out.mkdir()
    _export_fake([("ok", _TwoOutputs(), ["a", "b"])], out)
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json", "ok.onnx"]
    assert out.stat().st_mode & 0o777 == 0o755  # not left private like a temporary folder


def test_force_never_replaces_a_folder_that_is_not_an_export(tmp_path):
    out = tmp_path / "precious"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    with pytest.raises(ExportError, match="not an aelab export"):
        _export_fake([("ok", _TwoOutputs(), ["a", "b"])], out, force=True)
    assert (out / "notes.txt").read_text() == "keep me"


@pytest.mark.parametrize("bad", ["../x", "a/b", "..", "x y", ""])
def test_unsafe_or_unknown_graph_names_are_refused(tmp_path, bad):
    with pytest.raises(ExportError, match="graph"):
        _export_fake([("ok", _TwoOutputs(), ["a", "b"])], tmp_path / "e", graphs=[bad])
    assert list(tmp_path.iterdir()) == []


def test_model_declaring_an_unsafe_graph_name_is_refused(tmp_path):
    with pytest.raises(ExportError, match="not a safe file name"):
        _export_fake([("../escape", _TwoOutputs(), ["a", "b"])], tmp_path / "e")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("out", ["../outside", "exports/../../x", "/"])
def test_out_dir_cannot_escape(tmp_path, monkeypatch, out):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ExportError):
        _export_fake([("ok", _TwoOutputs(), ["a", "b"])], out)
    assert list(tmp_path.iterdir()) == []


def test_unsafe_run_id_cannot_name_the_default_folder(tmp_path):
    with pytest.raises(ExportError, match="cannot name an export folder"):
        export_model(
            _Fake([("ok", _TwoOutputs(), ["a", "b"])]),
            FAKE_SPEC,
            {},
            run_id="../../evil",
            data_meta={},
        )
    assert not exports_root().exists()


def test_series_settings_travel_in_the_manifest_and_in_every_data_graph(tmp_path):
    spec = get_models()["conv1d"]
    model = spec.build({"code_size": 3, "nodes": 4, "layers": 1}, (2, 12), "flat")
    series = {"window": 12, "stride": 3, "scaling": "global", "channels": ["x", "y"]}
    scaling = {"method": "minmax", "min": [[0.0], [10.0]], "max": [[1.0], [20.0]]}
    meta = {"name": "s", "kind": "flat", "sample_shape": [2, 12], "scaling": scaling}
    plain = export_model(
        model, spec, model.params, run_id="p", data_meta=meta, out_dir=tmp_path / "p"
    )
    assert "series" not in json.loads((plain.folder / "manifest.json").read_text())["preprocessing"]
    meta = {**meta, "series": {**series, "time_column": "date", "n_steps": 40}}
    result = export_model(
        model, spec, model.params, run_id="s", data_meta=meta, out_dir=tmp_path / "s"
    )
    manifest = json.loads((result.folder / "manifest.json").read_text())
    record = manifest["preprocessing"]["series"]
    assert {k: record[k] for k in series} == series and record["time_column"] == "date"
    assert manifest["data"]["series"]["n_steps"] == 40
    for entry in manifest["graphs"]:
        props = {
            p.key: p.value for p in onnx.load(str(result.folder / entry["file"])).metadata_props
        }
        pre = json.loads(props["aelab.preprocessing"])
        assert (pre or {}).get("series") == (record if entry["input"]["range"] else None)
