"""Generation: `aelab sample` on images and flat data, conditional models, refusals."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from aelab.applications import ApplicationError
from aelab.apps.generate import GenerateParams, generate
from aelab.cli import main
from aelab.data import load_data
from aelab.plugins import get_model
from aelab.train import Trainer


@pytest.fixture(scope="module")
def digits():
    return load_data("digits")


def _run(model_id, data, epochs=2):
    return Trainer(get_model(model_id), {}, data, {"epochs": epochs, "seed": 0}).fit()


def test_cli_writes_pngs_and_arrays_reproducibly(digits, tmp_path, capsys):
    done = _run("vae", digits)
    assert main(["sample", done.run_id, "-n", "5", "--out", str(tmp_path / "imgs"), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["n"] == 5 and summary["files"] == 5 and summary["shape"] == [1, 8, 8]
    pngs = sorted((tmp_path / "imgs").glob("*.png"))
    assert len(pngs) == 5 and Image.open(pngs[0]).size == (8, 8)
    assert main(["sample", done.run_id, "-n", "5", "--out", str(tmp_path / "a.npz")]) == 0
    assert main(["sample", done.run_id, "-n", "5", "--out", str(tmp_path / "b.npy")]) == 0
    a, b = np.load(tmp_path / "a.npz")["x"], np.load(tmp_path / "b.npy")
    assert a.shape == (5, 1, 8, 8) and np.array_equal(a, b)  # same seed, same samples
    assert 0.0 <= a.min() and a.max() <= 1.0
    # An existing output is not replaced without --force, and nothing half-written is left.
    assert main(["sample", done.run_id, "-n", "5", "--out", str(tmp_path / "a.npz")]) == 1
    assert "pass --force" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_a_conditional_model_generates_the_class_asked_for(digits):
    done = _run("cvae", digits, epochs=3)
    out = generate(done.model, GenerateParams(n=4, label=7)).samples
    assert out.shape == (4, 1, 8, 8)
    with pytest.raises(ApplicationError, match="classes 0 to 9"):
        generate(done.model, GenerateParams(n=4, label=12))


def test_models_without_a_prior_are_refused_with_the_reason(digits, capsys):
    done = _run("autoencoder", digits, epochs=1)
    assert main(["sample", done.run_id, "-n", "3"]) == 1
    assert "needs a model that can sample" in capsys.readouterr().err
    vae = _run("vae", digits, epochs=1)
    with pytest.raises(ApplicationError, match="not conditional"):
        generate(vae.model, GenerateParams(n=2, label=1))


def test_flat_data_is_written_as_arrays_not_images(tmp_path, capsys):
    done = _run("vae", load_data("swissroll"), epochs=1)
    assert main(["sample", done.run_id, "-n", "4", "--out", str(tmp_path / "s.csv")]) == 0
    assert np.loadtxt(tmp_path / "s.csv", delimiter=",").shape == (4, 3)
    assert main(["sample", done.run_id, "-n", "4", "--out", str(tmp_path / "folder")]) == 1
    assert "flat vectors, not images" in capsys.readouterr().err
