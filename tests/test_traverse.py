"""Latent traversal: `aelab traverse` on prior and data-scaled models, images and flat data."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from gradio_client.exceptions import AppError
from labapi import client, train
from PIL import Image

from aelab import inspect as ins
from aelab.applications import ApplicationError
from aelab.apps.traverse import TraverseParams, traverse
from aelab.cli import main
from aelab.data import load_data
from aelab.plugins import get_model
from aelab.train import Trainer


@pytest.fixture(scope="module")
def digits():
    return load_data("digits")


@pytest.fixture(scope="module")
def vae2(digits, tmp_path_factory):
    """A VAE with a 2-D code, saved in its own folder (named by path in the CLI tests)."""
    params = {"code_size": 2, "layers": 1, "nodes": 64}
    runs = tmp_path_factory.mktemp("traverse")
    return Trainer(get_model("vae"), params, digits, {"epochs": 8, "seed": 0}, runs_dir=runs).fit()


def test_a_2d_prior_is_a_grid_whose_centre_decodes_the_zero_code(vae2):
    result = traverse(vae2.model, TraverseParams(steps=5, span=2.0))
    assert result.layout == "grid" and result.scale == "prior" and result.axes == [0, 1]
    assert result.decoded.shape == (5, 5, 1, 8, 8)
    import torch

    with torch.no_grad():
        centre = vae2.model.decode(torch.zeros(1, 2)).numpy()[0]
    assert np.allclose(result.decoded[2, 2], centre, atol=1e-6)
    # Moving a unit changes the picture: the decoder uses both units of a 2-D code.
    assert np.abs(result.decoded[2, 0] - result.decoded[2, 4]).max() > 0.05
    assert np.abs(result.decoded[0, 2] - result.decoded[4, 2]).max() > 0.05
    # The top row is the second unit's largest value, as on a plot.
    assert result.values[0] == 2.0 and result.values[-1] == -2.0


def test_a_model_without_a_prior_is_scaled_by_its_codes(digits):
    done = Trainer(get_model("autoencoder"), {"code_size": 4}, digits, {"epochs": 2}).fit()
    with pytest.raises(ApplicationError, match="pass the data"):
        traverse(done.model, TraverseParams())
    result = traverse(done.model, TraverseParams(steps=3, span=1.0), digits)
    codes = ins.encode(done.model, digits.x)
    assert result.scale == "data" and len(result.axes) == 4
    assert result.axes[0] == int(np.argmax(codes.std(axis=0)))  # widest unit first
    import torch

    middle = codes.mean(axis=0, keepdims=True)
    with torch.no_grad():
        expected = done.model.decode(torch.as_tensor(middle)).numpy()[0]
    assert np.allclose(result.decoded[0, 1], expected, atol=1e-5)


def test_cli_writes_a_png_and_an_array(vae2, tmp_path, capsys):
    assert (
        main(["traverse", vae2.run_dir, "--layout", "rows", "--out", str(tmp_path / "t.png")]) == 0
    )
    img = Image.open(tmp_path / "t.png")
    assert img.size[0] > img.size[1]  # two rows of nine tiles
    out = tmp_path / "t.npy"
    assert (
        main(["traverse", vae2.run_dir, "--axes", "1", "--steps", "4", "--out", str(out), "--json"])
        == 0
    )
    summary = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert summary["axes"] == [1] and summary["layout"] == "rows"
    assert np.load(out).shape == (1, 4, 1, 8, 8)
    assert main(["traverse", vae2.run_dir, "--out", str(out)]) == 1
    assert "pass --force" in capsys.readouterr().err


def test_flat_data_and_conditional_models(digits, capsys):
    roll = load_data("swissroll")
    done = Trainer(get_model("vae"), {"code_size": 2}, roll, {"epochs": 1}).fit()
    assert main(["traverse", done.run_id, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["shape"] == [9, 9, 3]
    cvae = Trainer(get_model("cvae"), {"code_size": 2}, digits, {"epochs": 1}).fit()
    three = traverse(cvae.model, TraverseParams(steps=3, label=3))
    seven = traverse(cvae.model, TraverseParams(steps=3, label=7))
    assert three.label == 3 and not np.allclose(three.decoded, seven.decoded)
    with pytest.raises(ApplicationError, match="classes 0 to 9"):
        traverse(cvae.model, TraverseParams(label=12))


@pytest.mark.parametrize(
    "args, message",
    [
        (["--axes", "0,5"], "Code unit 5 does not exist: this code has units 0 to 1"),
        (["--axes", "0,0"], "Name each code unit once"),
        (["--axes", "a,b"], "whole numbers separated by commas"),
        (["--layout", "grid", "--axes", "0"], "exactly two code units"),
        (["--steps", "1"], "'steps' must be greater than or equal to 2"),
        (["--label", "1"], "not conditional"),
        (["--out", "t.gif"], "a .png picture or a .npy array"),
    ],
)
def test_bad_requests_get_one_sentence(vae2, args, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["traverse", vae2.run_dir, *args]) == 1
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and not list(tmp_path.iterdir())


def _path(img):
    """The file behind an image output (a bare path, or an update that also sets visibility)."""
    while isinstance(img, dict):
        img = img.get("value") or img.get("path")
    return Path(img)


def test_the_lab_panel_draws_or_says_why(lab):
    c = client(lab)
    train(c, "vae", {"code_size": 2, "layers": 1, "nodes": 32}, epochs=1)
    img, _table, caption = c.predict("", 5, 2.0, "auto", "", api_name="/traverse")
    assert _path(img).is_file() and "A grid over units z0 (left to right)" in caption
    img, _table, caption = c.predict("1", 5, 2.0, "rows", "", api_name="/traverse")
    assert "One row per code unit" in caption and "--axes 1" in caption
    other = client(lab)
    train(other, "autoencoder", epochs=1)
    img, _table, caption = other.predict("", 3, 1.0, "rows", "", api_name="/traverse")
    assert _path(img).is_file() and "spread of the data's codes" in caption
    with pytest.raises(AppError, match="no class to choose"):
        other.predict("", 3, 1.0, "rows", "4", api_name="/traverse")
