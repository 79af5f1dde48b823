"""Every registered model, on flat and image data, through the public conformance kit."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pytest
import torch

from aelab import testing
from aelab.data import Dataset, load_data
from aelab.errors import ParamsError
from aelab.plugins import get_models
from aelab.train import Done, train

MODELS = sorted(get_models())


@lru_cache(maxsize=2)
def _tiny(kind: str) -> Dataset:
    """48 seeded labelled digits, as 1×8×8 images or as flat 64-value rows."""
    data = load_data("digits")
    idx = np.sort(np.random.default_rng(0).permutation(len(data))[:48])
    x = data.x[idx]
    x = x if kind == "image" else x.reshape(len(x), -1)
    return Dataset(f"digits-{kind}", x, kind, labels=data.labels[idx])


CASES = [
    (model_id, kind)
    for model_id in MODELS
    for kind in ("flat", "image")
    if kind in get_models()[model_id].accepts
]


def test_every_family_is_registered():
    families = {
        "autoencoder",
        "linear",
        "overcomplete",
        "denoising",
        "sparse",
        "contractive",
        "conv",
        "vae",
        "cvae",
        "gan",
        "dcgan",
        "aae",
    }
    assert families <= set(MODELS)


@pytest.mark.parametrize("model_id", MODELS)
def test_spec(model_id):
    testing.check_spec(get_models()[model_id])


@pytest.mark.parametrize(("model_id", "kind"), CASES)
def test_build_step_graphs_roundtrip(model_id, kind, tmp_path):
    # The whole kit in one pass: a failure lists every finding, not just the first.
    testing.check_all(get_models()[model_id], _tiny(kind), tmp_path)


def _variant(spec) -> dict:
    """Params off the defaults: one more (or one fewer) hidden layer, and every regulariser the
    model has switched on, so each penalty also runs with a deeper network."""
    schema = spec.params.model_json_schema()["properties"]
    params: dict = {}
    if "layers" in schema:
        default, top = schema["layers"]["default"], schema["layers"].get("maximum", 8)
        params["layers"] = default + 1 if default + 1 <= top else default - 1
    if "nodes" in schema:
        params["nodes"] = 16
    for key in ("noise", "l1_weight", "kl_weight", "contractive_weight"):
        if key in schema and not schema[key].get("default"):
            params[key] = 0.05
    return params


@pytest.mark.parametrize(("model_id", "kind"), CASES)
def test_build_and_step_off_the_defaults(model_id, kind):
    spec = get_models()[model_id]
    model = testing.check_build_and_step(spec, _tiny(kind), _variant(spec))
    assert model.params.model_dump().items() >= _variant(spec).items()


def test_kit_reports_a_broken_graph():
    spec, data = get_models()["autoencoder"], _tiny("image")
    model = testing.build(spec, data)
    model.graphs = lambda: (
        [g for g in type(model).graphs(model) if g.name != "encoder"]
        + [
            testing.GraphSpec(
                "decoder2", torch.nn.Identity(), "code", model.code_shape, ["a", "b"], None
            )
        ]
    )
    with pytest.raises(AssertionError, match="declares"):
        testing.check_graphs(spec, data, model)


def test_trainer_passes_labels_and_refuses_unlabelled_data():
    spec = get_models()["cvae"]
    data = _tiny("image")
    done = [e for e in train(spec, {}, data, {"epochs": 1, "batch_size": 16}, save=False)][-1]
    assert isinstance(done, Done) and done.status == "completed"
    assert np.isfinite(done.val_losses["elbo"])
    unlabelled = Dataset("nolabels", data.x, "image")
    with pytest.raises(ParamsError, match="needs a label"):
        list(train(spec, {}, unlabelled, {"epochs": 1}, save=False))


def test_overcomplete_without_regulariser_explains_identity():
    spec = get_models()["overcomplete"]
    off = {"l1_weight": 0, "kl_weight": 0, "contractive_weight": 0, "noise": 0}
    with pytest.raises(ParamsError, match="identity"):
        spec.validate_params(off)
    with pytest.raises(ParamsError, match="not larger than the input"):
        spec.build({"code_size": 32}, (1, 8, 8), "image")


@pytest.mark.parametrize("size", [(1, 8, 8), (1, 16, 16), (1, 28, 28), (3, 13, 11)])
@pytest.mark.parametrize("model_id", ["conv", "dcgan"])
def test_conv_models_keep_any_image_shape(model_id, size):
    torch.manual_seed(0)
    model = get_models()[model_id].build({"layers": 2, "nodes": 4}, size, "image").eval()
    x = torch.rand(2, *size)
    out = model.reconstruct(x) if model_id == "conv" else model.sample(2)
    assert tuple(out.shape) == (2, *size)


def test_kit_passes_the_third_party_plugin_template(monkeypatch):
    """The conformance kit works on a plugin outside aelab (the template package)."""
    import importlib.util
    import sys
    from pathlib import Path

    path = Path(__file__).parent.parent / "examples" / "plugin-template" / "aelab_tied.py"
    module_spec = importlib.util.spec_from_file_location("aelab_tied_template", path)
    module = importlib.util.module_from_spec(module_spec)
    # pydantic resolves the template's postponed annotations through sys.modules.
    monkeypatch.setitem(sys.modules, module_spec.name, module)
    module_spec.loader.exec_module(module)
    data = _tiny("image")
    testing.check_spec(module.SPEC)
    model = testing.check_build_and_step(module.SPEC, data)
    testing.check_graphs(module.SPEC, data, model)


def test_readme_models_table_matches_the_registry():
    """Each README row: id, name, description and own parameters, as the plugins declare them."""
    from pathlib import Path

    from aelab.params import Params

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    rows = {}
    for line in readme.splitlines():
        if line.startswith("| `") and line.count("|") == 5:
            cells = [c.strip() for c in line.strip("|").split("|")]
            rows[cells[0].strip("`")] = cells[1:]
    assert set(rows) == set(MODELS)
    shared = set(Params.model_fields)
    for model_id, (name, description, own) in rows.items():
        spec = get_models()[model_id]
        declared = [k for k in spec.params.model_fields if k not in shared]
        assert (name, description) == (spec.name, spec.description), model_id
        assert own == (", ".join(declared) or "—"), model_id
