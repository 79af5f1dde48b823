"""docs/plugins.md stays true: its worked example passes the kit and trains, and it names every
part of the contract that the code defines."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import re
import sys
from pathlib import Path

import pytest
import torch

from aelab import hookspecs, testing
from aelab.data import Dataset, load_data
from aelab.models import CODE_KINDS, ROLES, GraphSpec, Model, ModelSpec
from aelab.params import Params, TrainConfig

DOC = Path(__file__).resolve().parent.parent / "docs" / "plugins.md"
EXAMPLE = "## A complete example"


def _blocks(after: str) -> list[str]:
    """The python code blocks of docs/plugins.md after the line starting with ``after``."""
    text = DOC.read_text(encoding="utf-8")
    return re.findall(r"```python\n(.*?)\n```", text[text.index(after) :], flags=re.S)


@pytest.fixture
def ksparse(tmp_path, monkeypatch):
    """The worked example, written to a file and imported as the module ``aelab_ksparse``."""
    folder = tmp_path / "plugin"
    folder.mkdir()
    path = folder / "aelab_ksparse.py"
    path.write_text(_blocks(EXAMPLE)[0] + "\n", encoding="utf-8")
    spec = importlib.util.spec_from_file_location("aelab_ksparse", path)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "aelab_ksparse", module)
    spec.loader.exec_module(module)
    return module


def _digits(kind: str) -> Dataset:
    data = load_data("digits").subset(range(64))
    if kind == "flat":
        return Dataset("digits-flat", data.x.reshape(len(data), -1), "flat", labels=data.labels)
    return data


@pytest.mark.parametrize("kind", ["image", "flat"])
def test_worked_example_passes_the_kit(ksparse, kind, tmp_path):
    testing.check_all(ksparse.SPEC, _digits(kind), tmp_path / "kit")
    params = {"k": 2, "noise": 0.2, "layers": 1, "nodes": 32}
    assert testing.conformance_report(ksparse.SPEC, _digits(kind), params=params) == []


def test_worked_example_test_as_printed_passes(ksparse, tmp_path):
    namespace: dict = {}
    exec(_blocks(EXAMPLE)[1], namespace)
    namespace["test_conformance"](tmp_path / "doc")


def test_worked_example_keeps_k_units(ksparse):
    model = ksparse.SPEC.build({"k": 3, "code_size": 16}, (1, 8, 8), "image").eval()
    z = model.encode(torch.rand(10, 1, 8, 8, generator=torch.Generator().manual_seed(0)))
    assert ((z != 0).sum(dim=1) <= 3).all() and ((z != 0).sum(dim=1) >= 1).all()


def test_worked_example_registers_and_trains_with_its_metric(ksparse, fresh_plugins, capsys):
    from aelab.cli import main

    folder = Path(ksparse.__file__).parent
    code = main(["--plugins-dir", str(folder), "train", "ksparse", "--epochs", "1", "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "warning:" not in err
    done = json.loads(out.strip().splitlines()[-1])
    assert done["status"] == "completed"
    assert 0 < done["metrics"]["units_in_use"] <= 1
    assert "units_in_use" not in done["losses"]  # a metric, never a loss term


def _named(name: str, text: str) -> bool:
    """Whether ``name`` appears as a word inside some `code span` of the text."""
    word = rf"(?<![\w-]){re.escape(name)}(?![\w-])"
    return any(re.search(word, span) for span in re.findall(r"`([^`\n]+)`", text))


def test_doc_names_every_part_of_the_contract():
    text = DOC.read_text(encoding="utf-8")
    model_api = [
        n
        for n in vars(Model)
        if not n.startswith("_") and n not in ("dump_patches", "T_destination")
    ]
    parts = {
        "Model": model_api,
        "GraphSpec": [f.name for f in dataclasses.fields(GraphSpec)],
        "ModelSpec": [f.name for f in dataclasses.fields(ModelSpec)],
        "hooks": [n for n in vars(hookspecs) if n.startswith("register_")],
        "shared params": list(Params.model_fields),
        "training settings": list(TrainConfig.model_fields),
        "code kinds": list(CODE_KINDS),
        "roles": list(ROLES),
        "kit": [n for n in testing.__all__ if n != "GraphSpec"],
        "switches": ["AELAB_LOAD_PLUGINS", "AELAB_PLUGINS_DIR", "--plugins-dir", "AELAB_DEBUG"],
    }
    missing = {what: [n for n in names if not _named(n, text)] for what, names in parts.items()}
    assert not any(missing.values()), f"docs/plugins.md does not mention {missing}"


def test_readme_links_the_plugin_contract():
    readme = (DOC.parent.parent / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## Writing a model plugin") :]
    assert "(docs/plugins.md)" in section[: section.index("\n## ")]
