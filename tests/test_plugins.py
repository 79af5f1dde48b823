"""The plugin host: entry-point discovery, drop-in folders, isolation of failures, duplicates."""

from __future__ import annotations

import json
import sys
import types
from importlib import metadata
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


# -- host rules: built-ins keep their ids, refusals are loud, schemas are checked on entry ------


def _entry_points_of(site: Path, dist: str) -> list:
    """The real ``aelab`` entry points of one fake distribution installed in ``site``."""
    found = [d for d in metadata.distributions(path=[str(site)]) if d.metadata["Name"] == dist]
    return [ep for ep in found[0].entry_points if ep.group == "aelab"]


def _builtin_entry_points() -> list:
    return [
        ep
        for ep in metadata.entry_points(group="aelab")
        if ep.dist is not None and ep.dist.metadata["Name"] == "aelab"
    ]


def _load_in_order(monkeypatch, order: list) -> None:
    """Make the host see exactly these entry points, in this order."""
    real = metadata.entry_points

    def entry_points(**kwargs):
        return list(order) if kwargs.get("group") == "aelab" else real(**kwargs)

    monkeypatch.setattr(metadata, "entry_points", entry_points)


@pytest.mark.parametrize("third_party_first", [True, False])
def test_builtin_model_keeps_its_id_whatever_the_load_order(
    site, monkeypatch, capsys, third_party_first
):
    from aelab import plugins
    from aelab.cli import main

    make_distribution(site, "aelab-evil", "aelab_evil", PLUGIN_SRC.format(model_id="autoencoder"))
    evil, builtins = _entry_points_of(site, "aelab-evil"), _builtin_entry_points()
    assert evil and len(builtins) >= 11
    _load_in_order(monkeypatch, evil + builtins if third_party_first else builtins + evil)

    # Loud on the command line: one warning line naming the id and both plugins.
    assert main(["models"]) == 0
    out, err = capsys.readouterr()
    assert "Autoencoder (undercomplete)" in out and "Tiny" not in out
    warned = [line for line in err.splitlines() if line.startswith("warning: ")]
    assert any(
        "'autoencoder'" in line and "aelab_evil" in line and "built-in" in line for line in warned
    ), err

    spec = plugins.get_model("autoencoder")
    assert spec.plugin == "autoencoder" and spec.name == "Autoencoder (undercomplete)"
    assert plugins.is_builtin("autoencoder") and not plugins.is_builtin("aelab_evil")
    (line,) = plugins.load_warnings()
    assert "model id 'autoencoder'" in line and "'aelab_evil'" in line
    assert plugins.duplicate_errors() == [line]

    # And in `aelab plugins`, on the refused plugin's row.
    assert main(["plugins"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert "autoencoder" in rows["aelab_evil"]["error"] and rows["aelab_evil"]["models"] == []
    assert "error" not in rows["autoencoder"]


@pytest.mark.parametrize("third_party_first", [True, False])
def test_builtin_keeps_its_plugin_name_whatever_the_load_order(
    site, monkeypatch, third_party_first
):
    """A third party whose entry point has a built-in's name is refused, not silently dropped."""
    from aelab import plugins

    make_distribution(site, "aelab-evil", "aelab_evil", PLUGIN_SRC.format(model_id="evil"))
    info = next(site.glob("aelab_evil-*.dist-info"))
    (info / "entry_points.txt").write_text("[aelab]\nvae = aelab_evil\n")
    evil, builtins = _entry_points_of(site, "aelab-evil"), _builtin_entry_points()
    _load_in_order(monkeypatch, evil + builtins if third_party_first else builtins + evil)
    assert plugins.get_model("vae").name.startswith("Variational autoencoder")
    assert "evil" not in plugins.get_models()
    (line,) = plugins.load_warnings()
    assert "plugin name 'vae'" in line and "aelab-evil" in line and "built-in" in line


def test_two_third_party_plugins_with_one_id_first_keeps_it(site):
    from aelab import plugins

    make_distribution(site, "aelab-one", "aelab_one", PLUGIN_SRC.format(model_id="same"))
    make_distribution(site, "aelab-two", "aelab_two", PLUGIN_SRC.format(model_id="same"))
    holder = plugins.get_model("same").plugin
    other = ({"aelab_one", "aelab_two"} - {holder}).pop()
    (line,) = plugins.load_warnings()
    assert f"'{holder}'" in line and f"'{other}'" in line and "'same'" in line


LOOSE_SRC = """
from pydantic import Field

from aelab.blocks import MLPAutoencoder
from aelab.hookspecs import hookimpl
from aelab.models import ModelSpec
from aelab.params import Params


class LooseParams(Params):
    rate: float = Field(0.1, gt=0, title="Rate", description="Has no upper bound.")
    mode: str = Field("a", title="Mode")


@hookimpl
def register_models(register):
    register(ModelSpec(id="loose", name="Loose", description="Unbounded.",
                       params=LooseParams, factory=MLPAutoencoder))
    register(ModelSpec(id="fine", name="Fine", description="Complete.",
                       params=Params, factory=MLPAutoencoder))
"""


def test_incomplete_parameter_schema_is_refused_at_registration(tmp_path, fresh_plugins, capsys):
    from aelab import testing
    from aelab.cli import main

    folder = tmp_path / "dropin"
    folder.mkdir()
    (folder / "loose_plugin.py").write_text(LOOSE_SRC)
    assert main(["--plugins-dir", str(folder), "train", "loose", "--epochs", "1"]) == 1
    err = capsys.readouterr().err
    (warning,) = [line for line in err.splitlines() if line.startswith("warning: ")]
    assert "model 'loose' of plugin 'loose_plugin' was refused" in warning
    assert "'rate' lacks an upper bound" in warning and "'mode' lacks a description" in warning
    assert "error: Unknown model 'loose'" in err
    models = fresh_plugins.get_models()
    assert "fine" in models and "loose" not in models  # the plugin's complete model still registers
    info = {p["name"]: p for p in fresh_plugins.plugin_info()}
    assert "'rate'" in info["loose_plugin"]["error"] and info["loose_plugin"]["models"] == ["fine"]
    # The kit reports the same problems with the same function.
    module = sys.modules["aelab_dropin_loose_plugin"]
    spec = module.ModelSpec(
        id="loose", name="Loose", description="x.", params=module.LooseParams, factory=None
    )
    with pytest.raises(AssertionError, match="'rate' lacks an upper bound"):
        testing.check_spec(spec)


def test_every_builtin_registers_without_warnings(fresh_plugins):
    assert fresh_plugins.load_warnings() == []
    builtins = {ep.name for ep in _builtin_entry_points()}
    assert {s.plugin for s in fresh_plugins.get_models().values()} == builtins
    assert all(fresh_plugins.is_builtin(name) for name in builtins)


def test_plugin_template_ships_passing_tests():
    """The template's own tests (its README promises them) pass, run as a plugin author would."""
    import os
    import subprocess

    assert sorted(p.name for p in (TEMPLATE / "tests").glob("test_*.py"))
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-W",
            "error::DeprecationWarning:aelab_tied",
        ],
        cwd=TEMPLATE,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert " passed" in result.stdout and "failed" not in result.stdout


def test_every_builtin_schema_passes_the_hosts_rules(fresh_plugins):
    """The host skips its schema check for aelab's own plugins (it costs every start ~25 ms);
    this is where they are held to the rules a third-party plugin meets at registration."""
    from aelab.applications import AppParams
    from aelab.params import schema_problems

    models = fresh_plugins.get_models()
    apps = fresh_plugins.get_applications()
    assert len(models) >= 13 and len(apps) >= 8
    for spec in models.values():
        if fresh_plugins.is_builtin(spec.plugin):
            assert schema_problems(spec.params) == [], spec.id
    for spec in apps.values():
        if fresh_plugins.is_builtin(spec.plugin):
            assert schema_problems(spec.params, AppParams) == [], spec.id
