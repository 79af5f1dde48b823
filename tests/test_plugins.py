"""The plugin host: entry-point discovery, drop-in folders, isolation of failures, duplicates."""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path

import pytest

from aelab.errors import PluginError

PLUGIN_SRC = """
from aelab.blocks import MLPAutoencoder
from aelab.hookspecs import hookimpl
from aelab.models import ModelSpec
from aelab.params import Params


class TinyParams(Params):
    pass


@hookimpl
def register_models(register):
    register(ModelSpec(id="{model_id}", name="Tiny", description="A test model.",
                       params=TinyParams, factory=MLPAutoencoder))
"""


def make_distribution(root, dist: str, module: str, source: str, version: str = "1.0") -> None:
    """Write a module plus a real .dist-info with an ``aelab`` entry point into ``root``."""
    (root / f"{module}.py").write_text(source)
    info = root / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    (info / "entry_points.txt").write_text(f"[aelab]\n{module} = {module}\n")


@pytest.fixture
def site(tmp_path, monkeypatch, fresh_plugins):
    """A folder on sys.path where tests install fake distributions."""
    root = tmp_path / "site"
    root.mkdir()
    monkeypatch.syspath_prepend(str(root))
    return root


def test_builtin_model_arrives_through_entry_point(fresh_plugins):
    info = {p["name"]: p for p in fresh_plugins.plugin_info()}
    assert "autoencoder" in info["autoencoder"]["models"]
    assert info["autoencoder"]["version"]  # a version means it came from package metadata
    assert fresh_plugins.get_model("autoencoder").plugin == "autoencoder"


def test_third_party_distribution_is_discovered(site):
    from aelab import plugins

    make_distribution(site, "aelab-tiny", "aelab_tiny", PLUGIN_SRC.format(model_id="tiny"), "2.3")
    spec = plugins.get_model("tiny")
    assert spec.plugin == "aelab_tiny"
    info = {p["name"]: p for p in plugins.plugin_info()}
    assert info["aelab_tiny"]["version"] == "2.3"
    assert info["aelab_tiny"]["hooks"] == ["register_models"]
    assert "autoencoder" in plugins.get_models()


def test_plugin_failing_to_import_is_reported_and_skipped(site):
    from aelab import plugins

    make_distribution(site, "aelab-broken", "aelab_broken", "raise ImportError('needs libfoo')\n")
    models = plugins.get_models()
    assert "autoencoder" in models
    failed = [p for p in plugins.plugin_info() if p["name"] == "aelab_broken"]
    assert failed and "needs libfoo" in failed[0]["error"]


def test_plugin_failing_in_register_is_isolated(site):
    from aelab import plugins

    src = "from aelab.hookspecs import hookimpl\n\n@hookimpl\ndef register_models(register):\n    raise RuntimeError('boom')\n"
    make_distribution(site, "aelab-bad", "aelab_bad", src)
    assert "autoencoder" in plugins.get_models()
    info = {p["name"]: p for p in plugins.plugin_info()}
    assert "boom" in info["aelab_bad"]["error"]


def test_duplicate_model_id_names_both_plugins(site):
    from aelab import plugins

    make_distribution(site, "aelab-dup", "aelab_dup", PLUGIN_SRC.format(model_id="autoencoder"))
    plugins.get_models()
    errors = plugins.duplicate_errors()
    assert len(errors) == 1
    assert "'autoencoder'" in errors[0] and "aelab_dup" in errors[0]


def test_load_plugins_env_restricts(site, monkeypatch):
    from aelab import plugins

    make_distribution(site, "aelab-tiny", "aelab_tiny", PLUGIN_SRC.format(model_id="tiny"))
    monkeypatch.setenv("AELAB_LOAD_PLUGINS", "aelab_tiny")
    assert set(plugins.get_models()) == {"tiny"}


def test_plugins_dir_loads_loose_files(tmp_path, fresh_plugins):
    folder = tmp_path / "dropin"
    folder.mkdir()
    (folder / "mine.py").write_text(PLUGIN_SRC.format(model_id="mine"))
    (folder / "broken.py").write_text("import not_a_module_anywhere\n")
    fresh_plugins.set_plugins_dir(folder)
    assert fresh_plugins.get_model("mine").plugin == "mine"
    info = {p["name"]: p for p in fresh_plugins.plugin_info()}
    assert "not_a_module_anywhere" in info["broken"]["error"]


def test_unknown_model_lists_known_ones(fresh_plugins):
    with pytest.raises(PluginError, match="registered models are: .*autoencoder"):
        fresh_plugins.get_model("nope")


def test_register_rejects_non_spec(fresh_plugins):
    from aelab.hookspecs import hookimpl

    @hookimpl
    def register_models(register):
        register("not a spec")

    bad = types.ModuleType("bad_obj")
    bad.register_models = register_models
    fresh_plugins.load_plugins()
    fresh_plugins.pm.register(bad, name="bad_obj")
    fresh_plugins.invalidate()
    assert "autoencoder" in fresh_plugins.get_models()
    info = {p["name"]: p for p in fresh_plugins.plugin_info()}
    assert "expected a ModelSpec" in info["bad_obj"]["error"]


def test_plugins_cli_prints_json(site, capsys):
    from aelab.cli import main

    make_distribution(site, "aelab-broken", "aelab_broken", "raise ImportError('needs libfoo')\n")
    assert main(["plugins"]) == 0
    rows = json.loads(capsys.readouterr().out)
    by_name = {r["name"]: r for r in rows}
    assert by_name["autoencoder"]["models"] == ["autoencoder"]
    assert set(by_name["autoencoder"]) >= {"name", "version", "hooks", "models"}
    assert "needs libfoo" in by_name["aelab_broken"]["error"]


def test_hookspecs_are_documented():
    from aelab import hookspecs

    for name in ("register_models", "register_datasets"):
        assert getattr(hookspecs, name).__doc__.strip()


TEMPLATE = Path(__file__).resolve().parent.parent / "examples" / "plugin-template"


def test_plugin_template_trains_and_exports_graphs(fresh_plugins, capsys):
    from aelab.cli import main

    code = main(
        [
            "--plugins-dir",
            str(TEMPLATE),
            "train",
            "tied",
            "--epochs",
            "2",
            "-o",
            "code_size",
            "4",
            "-o",
            "activation",
            "tanh",
            "--json",
        ]
    )
    out = capsys.readouterr().out.strip().splitlines()
    assert code == 0
    last = json.loads(out[-1])
    assert last["status"] == "completed" and last["losses"]["reconstruction"] > 0
    spec = fresh_plugins.get_model("tied")
    assert spec.plugin == "aelab_tied"
    model = spec.build({"code_size": 4}, (1, 8, 8), "image")
    untied = fresh_plugins.get_model("autoencoder").build({"code_size": 4}, (1, 8, 8), "image")
    n_tied = sum(p.numel() for p in model.parameters())
    n_untied = sum(p.numel() for p in untied.parameters())
    assert n_tied < 0.55 * n_untied  # one weight matrix per layer, shared by encoder and decoder
    assert [g.name for g in model.graphs()] == ["autoencoder", "encoder", "decoder"]


def _readme_block(after: str) -> str:
    """The first python code block of the README after the line containing ``after``."""
    text = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    rest = text[text.index(after) :]
    start = rest.index("```python\n") + len("```python\n")
    return rest[start : rest.index("\n```", start)]


def test_readme_plugin_example_installs_and_passes_the_readme_conformance_test(
    site, tmp_path, monkeypatch
):
    """The README's plugin, as printed and installed as a package, is discovered through its
    entry point, and the README's own conformance test (run here as written) passes on it."""
    from aelab import plugins

    make_distribution(site, "aelab-tied", "aelab_tied", _readme_block("A complete plugin"))
    monkeypatch.delitem(sys.modules, "aelab_tied", raising=False)
    assert plugins.get_model("tied").plugin == "aelab_tied"
    namespace: dict = {}
    exec(_readme_block("**Conformance kit.**"), namespace)
    namespace["test_conformance"](tmp_path / "kit")


def test_kit_explains_a_plugin_module_imported_twice(tmp_path, fresh_plugins, monkeypatch):
    """A drop-in file imported again under its own name makes a second class of the same name."""
    from aelab import testing
    from aelab.data import load_data

    folder = tmp_path / "dropin"
    folder.mkdir()
    (folder / "aelab_tied.py").write_text(_readme_block("A complete plugin"), encoding="utf-8")
    fresh_plugins.set_plugins_dir(folder)
    fresh_plugins.get_model("tied")
    monkeypatch.syspath_prepend(str(folder))
    monkeypatch.delitem(sys.modules, "aelab_tied", raising=False)
    from aelab_tied import SPEC  # a second copy of the module: not the registered one

    with pytest.raises(AssertionError, match="imported twice"):
        testing.check_roundtrip(SPEC, load_data("digits").subset(range(32)), tmp_path / "rt")
