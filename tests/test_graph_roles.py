"""Graphs are chosen by role, never by name: a plugin may call its graphs anything, exports
record each graph's role and prior, the runtime's verbs read them, and exports written before
roles still load."""

from __future__ import annotations

import json
import shutil
import types
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from aelab_plugins.vae import VAE, VAEParams, _Stats
from torch import nn

from aelab import runtime, testing
from aelab.cli import main
from aelab.data import load_data
from aelab.errors import ExportError
from aelab.export import ExportResult, export_model, export_run
from aelab.hookspecs import hookimpl
from aelab.models import GraphSpec, ModelSpec, _Verb
from aelab.plugins import get_model
from aelab.runs import load_run
from aelab.train import Done, train
from aelab.ui.exporting import quick_check

ROOT = Path(__file__).resolve().parents[1]
META = {
    "name": "digits",
    "kind": "image",
    "sample_shape": [1, 8, 8],
    "scaling": {"method": "divide", "scale": 16.0},
}
PLAIN_AE = (
    "This export cannot sample: decoding random codes of a plain autoencoder does not "
    "generate data; its decoder 'decoder' has no prior."
)


class RenamedVAE(VAE):
    """The built-in VAE with graphs no consumer could recognise by name."""

    def graphs(self) -> list[GraphSpec]:
        return [
            GraphSpec(
                "to_code",
                _Stats(self),
                "input",
                self.sample_shape,
                ["mean", "logvar"],
                role="encoder",
            ),
            GraphSpec(
                "from_code",
                _Verb(self, "decode"),
                "code",
                self.code_shape,
                ["output"],
                None,
                role="decoder",
                prior="normal",
            ),
            # Last, so that nothing finds it by being first.
            GraphSpec(
                "whole",
                _Verb(self, "reconstruct"),
                "input",
                self.sample_shape,
                ["reconstruction"],
                role="autoencoder",
            ),
        ]


SPEC = ModelSpec(
    id="renamed_vae",
    name="Renamed VAE",
    description="The VAE, its graphs named freely.",
    params=VAEParams,
    factory=RenamedVAE,
)


def _register(spec: ModelSpec):
    @hookimpl
    def register_models(register):
        register(spec)

    return register_models


def _trained_export(fresh_plugins, tmp_path: Path) -> tuple[object, Path]:
    """A tiny run of the renamed VAE, trained through the plugin system and exported."""
    fresh_plugins.pm.register(types.SimpleNamespace(register_models=_register(SPEC)), "renamed-vae")
    fresh_plugins.invalidate()
    data = load_data("digits").subset(range(160))
    config = {"epochs": 1, "batch_size": 64}
    done = list(train(get_model("renamed_vae"), {"code_size": 4}, data, config))[-1]
    assert isinstance(done, Done) and done.status == "completed", done.message
    result = export_run(done.run_id, out_dir=tmp_path / "export")  # validated, or it raises
    assert [g["validation"]["passed"] for g in result.manifest["graphs"]] == [True] * 3
    return load_run(done.run_id).model.eval(), result.folder


def _digits(n: int = 5) -> np.ndarray:
    return np.random.default_rng(0).random((n, 1, 8, 8), dtype=np.float32)


def test_a_plugin_names_its_graphs_freely_and_every_verb_finds_them(fresh_plugins, tmp_path):
    testing.check_graphs(SPEC, load_data("digits").subset(range(32)))  # the kit reads roles
    model, folder = _trained_export(fresh_plugins, tmp_path)
    manifest = json.loads((folder / "manifest.json").read_text())
    assert [(g["name"], g["role"], g["prior"]) for g in manifest["graphs"]] == [
        ("to_code", "encoder", None),
        ("from_code", "decoder", "normal"),
        ("whole", "autoencoder", None),
    ]
    props = {p.key: p.value for p in onnx.load(str(folder / "from_code.onnx")).metadata_props}
    assert props["aelab.role"] == "decoder" and json.loads(props["aelab.prior"]) == "normal"

    m = runtime.load(folder, provider="cpu")
    assert m.roles == {"to_code": "encoder", "from_code": "decoder", "whole": "autoencoder"}
    x = _digits()
    z = np.random.default_rng(1).standard_normal((3, 4), dtype=np.float32)
    with torch.inference_mode():
        xt = torch.from_numpy(x)
        want_rec, want_code = model.reconstruct(xt).numpy(), model.encode(xt).numpy()
        want_dec = model.decode(torch.from_numpy(z)).numpy()
        want_sample = model.decode(
            torch.from_numpy(np.random.default_rng(7).standard_normal((4, 4), dtype=np.float32))
        ).numpy()
    np.testing.assert_allclose(m.encode(x), want_code, atol=1e-4)
    np.testing.assert_allclose(m.decode(z), want_dec, atol=1e-4)
    np.testing.assert_allclose(m.reconstruct(x), want_rec, atol=1e-4)
    np.testing.assert_allclose(m.sample(4, seed=7), want_sample, atol=1e-4)
    assert list(m.run("encoder", x)) == ["mean", "logvar"]  # a role stands for its graph
    assert m.input_shape("decoder") == (4,)
    assert "| to_code | encoder |" in ExportResult(folder, manifest).summary()

    one = runtime.load(folder / "from_code.onnx")  # a single file knows its role and prior
    assert one.roles == {"from_code": "decoder"} and one.priors == {"from_code": "normal"}
    np.testing.assert_allclose(one.sample(4, seed=7), want_sample, atol=1e-4)

    # Asking the exporter for a role exports the graphs that have it.
    part = export_run(manifest["run_id"], out_dir=tmp_path / "part", graphs=["encoder"])
    assert [g["name"] for g in part.manifest["graphs"]] == ["to_code"]


def test_infer_consumer_and_the_quick_check_pick_the_autoencoder_by_role(
    fresh_plugins, tmp_path, capsys, run_consumer
):
    model, folder = _trained_export(fresh_plugins, tmp_path)
    m = runtime.load(folder, provider="cpu")
    x = _digits(2)
    np.save(tmp_path / "x.npy", x)

    assert (
        main(["infer", str(folder), str(tmp_path / "x.npy"), "--out", str(tmp_path / "y.npy")]) == 0
    )
    assert "whole ->" in capsys.readouterr().err
    np.testing.assert_allclose(np.load(tmp_path / "y.npy"), m.reconstruct(x), atol=1e-6)
    code = main(
        [
            "infer",
            str(folder),
            str(tmp_path / "x.npy"),
            "--graph",
            "encoder",
            "--out",
            str(tmp_path / "z.npz"),
        ]
    )
    assert code == 0 and "to_code ->" in capsys.readouterr().err
    np.testing.assert_allclose(np.load(tmp_path / "z.npz")["mean"], m.encode(x), atol=1e-6)

    result = run_consumer(folder, cwd=tmp_path)
    assert result["graph"] == "whole" and "reconstruction_mse" in result

    session = types.SimpleNamespace(export_folder=str(folder), model=model)
    _img, line = quick_check(session, str(tmp_path / "x.npy"))
    assert "onnxruntime ran the `whole` graph on 2 input(s)" in line


class _Painter(nn.Module):
    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(torch.cat([z, -z], dim=1))


class _Judge(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.sum(dim=1, keepdim=True)


class _Gan:
    """A GAN-like model whose sampler and critic have names of their own, and an unbounded
    graph of another role that sample() must not draw through."""

    sample_shape = (4,)

    def parameters(self):
        return iter(())

    def eval(self):
        return self

    def train(self, mode: bool = True):
        return self

    training = False

    def graphs(self) -> list[GraphSpec]:
        return [
            GraphSpec("warp", _Painter(), "noise", (2,), ["out"], None, role="other"),
            GraphSpec("judge", _Judge(), "input", (4,), ["score"], role="critic"),
            GraphSpec(
                "painter",
                _Painter(),
                "noise",
                (2,),
                ["sample"],
                None,
                role="sampler",
                prior="normal",
            ),
        ]


def test_sample_draws_through_the_sampler_whatever_it_is_called(tmp_path):
    spec = types.SimpleNamespace(id="fakegan", name="Fake GAN")
    meta = {"kind": "flat", "sample_shape": [4], "scaling": {"method": "none"}}
    export_model(_Gan(), spec, {}, run_id="g", data_meta=meta, out_dir=tmp_path / "e")
    m = runtime.load(tmp_path / "e")
    assert m.roles == {"warp": "other", "judge": "critic", "painter": "sampler"}
    assert m.priors == {"warp": None, "judge": None, "painter": "normal"}
    z = np.random.default_rng(3).standard_normal((5, 2), dtype=np.float32)
    want = 1 / (1 + np.exp(-np.concatenate([z, -z], axis=1)))
    np.testing.assert_allclose(m.sample(5, seed=3), want, atol=1e-6)
    assert m.run("critic", want)["score"].shape == (5, 1)
    with pytest.raises(runtime.RuntimeInputError, match="cannot encode: it has no encoder graph"):
        m.encode(want)


def _export(model_id: str, folder: Path) -> Path:
    spec = get_model(model_id)
    torch.manual_seed(0)
    model = spec.build({"code_size": 4}, (1, 8, 8), "image").eval()
    export_model(model, spec, model.params, run_id=model_id, data_meta=META, out_dir=folder)
    return folder


def test_sampling_a_plain_autoencoder_is_refused_in_one_sentence(tmp_path):
    m = runtime.load(_export("autoencoder", tmp_path / "ae"))
    with pytest.raises(runtime.RuntimeInputError) as err:
        m.sample(4)
    assert str(err.value) == PLAIN_AE
    assert m.priors == {"autoencoder": None, "encoder": None, "decoder": None}
    assert m.decode(np.zeros((1, 4), np.float32)).shape == (1, 1, 8, 8)  # decoding still works


def test_exports_written_before_roles_still_load(tmp_path):
    folder = _export("vae", tmp_path / "vae")
    want = runtime.load(folder).sample(3, seed=2)
    manifest = json.loads((folder / "manifest.json").read_text())
    for g in manifest["graphs"]:
        g.pop("role", None), g.pop("prior", None)
    (folder / "manifest.json").write_text(json.dumps(manifest))
    m = runtime.load(folder)
    assert m.roles == {"autoencoder": "autoencoder", "encoder": "encoder", "decoder": "decoder"}
    np.testing.assert_array_equal(m.sample(3, seed=2), want)  # sampled as before roles
    assert m.reconstruct(_digits(2)).shape == (2, 1, 8, 8)

    # A single file without the role keys: its role comes from its name.
    proto = onnx.load(str(folder / "decoder.onnx"))
    kept = [
        (p.key, p.value) for p in proto.metadata_props if p.key not in ("aelab.role", "aelab.prior")
    ]
    assert len(kept) == len(proto.metadata_props) - 2
    del proto.metadata_props[:]
    for key, value in kept:
        item = proto.metadata_props.add()
        item.key, item.value = key, value
    old = tmp_path / "old" / "decoder.onnx"
    old.parent.mkdir()
    onnx.save_model(proto, str(old))
    one = runtime.load(old)
    assert one.roles == {"decoder": "decoder"}
    np.testing.assert_array_equal(one.sample(3, seed=2), want)

    # An old "generator" is a sampler; an old plain autoencoder's graphs keep their names' roles.
    shutil.copytree(folder, tmp_path / "copy")
    manifest["graphs"] = [g for g in manifest["graphs"] if g["name"] == "decoder"]
    manifest["graphs"][0]["name"] = "generator"
    shutil.move(tmp_path / "copy" / "decoder.onnx", tmp_path / "copy" / "generator.onnx")
    manifest["graphs"][0]["file"] = "generator.onnx"
    (tmp_path / "copy" / "manifest.json").write_text(json.dumps(manifest))
    assert runtime.load(tmp_path / "copy").roles == {"generator": "sampler"}
    np.testing.assert_array_equal(runtime.load(tmp_path / "copy").sample(3, seed=2), want)


class _Declaring(_Gan):
    def __init__(self, **graph: object) -> None:
        self.graph = graph

    def graphs(self) -> list[GraphSpec]:
        g = GraphSpec("painter", _Painter(), "noise", (2,), ["sample"], None, role="sampler")
        for key, value in self.graph.items():
            setattr(g, key, value)
        return [g]


@pytest.mark.parametrize(
    "graph, message",
    [
        ({"prior": "normal", "input_range": (0.0, 1.0)}, "prior 'normal' but a bounded input"),
        ({"prior": "uniform"}, "prior 'uniform'; the runtime knows only 'normal'"),
        ({"role": "painter"}, "role 'painter'; roles are autoencoder, encoder"),
    ],
)
def test_export_records_only_roles_and_priors_the_runtime_can_act_on(tmp_path, graph, message):
    spec = types.SimpleNamespace(id="fakegan", name="Fake GAN")
    meta = {"kind": "flat", "sample_shape": [4], "scaling": {"method": "none"}}
    with pytest.raises(ExportError, match=message):
        export_model(
            _Declaring(**graph), spec, {}, run_id="g", data_meta=meta, out_dir=tmp_path / "e"
        )
    assert not (tmp_path / "e").exists()


def test_a_graph_called_generator_samples_without_declaring_a_prior():
    """GAN plugins written before priors existed keep sampling; a plain decoder gets no prior."""
    from torch import nn

    from aelab.models import GraphSpec

    old_gan = GraphSpec("generator", nn.Identity(), "noise", (4,), ["sample"], None)
    assert old_gan.role == "sampler" and old_gan.prior == "normal"
    plain = GraphSpec("decoder", nn.Identity(), "code", (4,), ["output"], None)
    assert plain.role == "decoder" and plain.prior is None
    with pytest.raises(ValueError, match="prior 'uniform'"):
        GraphSpec(
            "painter", nn.Identity(), "noise", (4,), ["x"], None, role="sampler", prior="uniform"
        )
