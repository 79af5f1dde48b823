"""A quick start (issue 15): listing models, ``aelab --help`` and building the lab's page import
no torch; a model's network (and torch) is imported by its first build, and it still trains.

Each check runs in a fresh interpreter, since this test process has imported torch long ago.
How fast any of it is belongs to benchmarks/bench_startup.py, not here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from aelab.errors import PluginError
from aelab.params import Params
from aelab.specs import ModelSpec

# Modules too heavy for a start-up path (torch ~2 s here, the others pull scipy or more).
HEAVY = ("torch", "sklearn", "scipy", "matplotlib", "onnx", "onnxruntime")


def _run(code: str, tmp_path, timeout: int = 240) -> dict:
    """Run ``code`` in a fresh interpreter; it prints one JSON object as its last line."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRADIO_")}
    env.update(
        GRADIO_ANALYTICS_ENABLED="False",
        AELAB_RUNS_DIR=str(tmp_path / "runs"),
        AELAB_EXPORTS_DIR=str(tmp_path / "exports"),
    )
    prelude = f"import json, sys\nHEAVY = {HEAVY!r}\n"
    proc = subprocess.run(
        [sys.executable, "-c", prelude + textwrap.dedent(code)],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=timeout,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_help_lists_every_command_without_importing_torch(tmp_path):
    out = _run(
        """
        import contextlib, io
        from aelab.cli import main
        text = io.StringIO()
        with contextlib.redirect_stdout(text):
            try:
                main(["--help"])
            except SystemExit:
                pass
        from aelab.plugins import get_applications, load_warnings
        apps = [a.id for a in get_applications().values() if a.cli is not None]
        print(json.dumps({"heavy": [m for m in HEAVY if m in sys.modules], "help": text.getvalue(),
                          "apps": apps, "warnings": load_warnings()}))
        """,
        tmp_path,
    )
    assert out["heavy"] == [] and out["warnings"] == []
    for command in ("models", "train", "export", "infer", "ui", *out["apps"]):
        assert f"\n    {command} " in out["help"], command
    assert len(out["apps"]) >= 8  # sample, traverse, encode, anomaly, denoise, ...


def test_listing_models_imports_no_network(tmp_path):
    out = _run(
        """
        from aelab.cli import main
        main(["models", "--json"])
        from aelab.plugins import get_models
        specs = get_models()
        print(json.dumps({"heavy": [m for m in HEAVY if m in sys.modules],
                          "lazy": sorted(i for i, s in specs.items() if s.lazy),
                          "nets": sorted(m for m in sys.modules if m.startswith("aelab_plugins.nets")),
                          "caps": {i: list(s.capabilities) for i, s in specs.items()}}))
        """,
        tmp_path,
    )
    assert out["heavy"] == [] and out["nets"] == []
    assert {"autoencoder", "conv", "vae", "gan", "dcgan", "cvae"} <= set(out["lazy"])
    assert out["caps"]["vae"] == ["encode", "decode", "reconstruct", "sample"]
    assert out["caps"]["gan"] == ["decode", "sample"]


def test_the_labs_page_is_built_without_torch(tmp_path):
    out = _run(
        """
        from aelab.ui.app import build_app
        demo = build_app()
        print(json.dumps({"heavy": [m for m in HEAVY if m in sys.modules],
                          "fns": len(demo.fns)}))
        """,
        tmp_path,
        timeout=280,
    )
    assert out["heavy"] == [] and out["fns"] > 10


def test_the_first_build_imports_the_network_and_the_model_trains(tmp_path):
    out = _run(
        """
        from aelab.data import load_data
        from aelab.plugins import get_model
        spec = get_model("vae")
        before = {"torch": "torch" in sys.modules, "lazy": spec.lazy}
        from aelab.train import train
        data = load_data("digits").subset(range(128))
        done = list(train(spec, {"code_size": 2}, data, {"epochs": 2, "seed": 0},
                                save=False, step_every=0))[-1]
        from aelab_plugins.nets.vae import VAE
        print(json.dumps({"before": before, "lazy": spec.lazy, "status": done.status,
                          "loss": done.losses.get("reconstruction"),
                          "factory": spec.resolve_factory() is VAE}))
        """,
        tmp_path,
    )
    assert out["before"] == {"torch": False, "lazy": True}
    assert out["lazy"] is False and out["factory"] is True
    assert out["status"] == "completed" and out["loss"] > 0


# -- the spec itself, in this process ------------------------------------------------------


class _Params(Params):
    """Nothing of its own."""


def test_a_factory_by_import_path_must_declare_capabilities():
    with pytest.raises(PluginError, match="capabilities"):
        ModelSpec("lazy", "Lazy", "No capabilities.", _Params, "aelab_plugins.nets.vae:VAE")


def test_a_factory_by_import_path_resolves_once_on_first_build():
    from aelab_plugins.nets.autoencoder import Autoencoder

    spec = ModelSpec(
        "lazy-ae",
        "Lazy",
        "A plain autoencoder by path.",
        _Params,
        "aelab_plugins.nets.autoencoder:Autoencoder",
        capabilities=["reconstruct", "encode", "decode", "encode"],
    )
    assert spec.capabilities == ["encode", "decode", "reconstruct"]  # the usual order, once
    assert spec.lazy
    model = spec.build({"code_size": 4}, (1, 8, 8), "image")
    assert isinstance(model, Autoencoder) and not spec.lazy
    assert spec.resolve_factory() is Autoencoder


@pytest.mark.parametrize(
    "path, message",
    [("no_colon_here", "import path"), ("aelab_plugins.nets.vae:Nope", "has no 'Nope'")],
)
def test_a_bad_import_path_fails_with_a_sentence_on_build(path, message):
    spec = ModelSpec("bad", "Bad", "Broken path.", _Params, path, capabilities=("encode",))
    with pytest.raises(PluginError, match=message):
        spec.build({}, (4,), "flat")


def test_an_old_style_spec_reads_the_class_capabilities():
    from aelab.blocks import MLPAutoencoder

    spec = ModelSpec("old", "Old", "A class as factory.", _Params, MLPAutoencoder)
    assert spec.capabilities == ["encode", "decode", "reconstruct"] and not spec.lazy


def test_the_kit_flags_capabilities_the_class_does_not_have():
    from aelab import testing

    spec = ModelSpec(
        "liar",
        "Liar",
        "Claims to sample.",
        _Params,
        "aelab_plugins.nets.autoencoder:Autoencoder",
        capabilities=("encode", "decode", "reconstruct", "sample"),
    )
    assert any("declares capabilities" in p for p in testing.spec_problems(spec))


def test_builtin_specs_declare_what_their_classes_can_do(fresh_plugins):
    for spec in fresh_plugins.get_models().values():
        caps = spec.resolve_factory().capabilities
        assert set(spec.capabilities) == set(caps), spec.id


def test_the_networks_stay_importable_from_the_plugin_modules():
    import aelab_plugins.gan as gan
    import aelab_plugins.vae as vae
    from aelab_plugins.nets import gan as gan_net
    from aelab_plugins.nets import vae as vae_net

    from aelab import blocks, param_groups

    assert vae.VAE is vae_net.VAE and vae._Stats is vae_net._Stats and gan.DCGAN is gan_net.DCGAN
    assert blocks.ConvParams is param_groups.ConvParams
    with pytest.raises(AttributeError):
        vae.NotThere  # noqa: B018


def test_the_vae_reads_its_initial_log_variance_at_build(monkeypatch):
    """Benchmarks and tests switch the VAE's initialisation off on the plugin module."""
    import aelab_plugins.vae as vae
    import torch

    monkeypatch.setattr(vae, "INITIAL_LOGVAR", None)
    model = vae.SPEC.build({"code_size": 2}, (1, 8, 8), "image")
    assert not torch.all(model.logvar.weight == 0)


def test_the_lab_warms_torch_up_once(monkeypatch):
    from aelab.ui import app

    monkeypatch.setattr(app, "_warming", None)
    app.warm_up()
    first = app._warming
    app.warm_up()
    assert app._warming is first
    first.join(timeout=120)
    assert not first.is_alive() and "aelab.train" in sys.modules
