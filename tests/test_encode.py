"""Dimensionality reduction: `aelab encode` writes a dataset's codes as .npy or CSV."""

from __future__ import annotations

import json

import numpy as np

from aelab import inspect as ins
from aelab.cli import main
from aelab.data import load_data
from aelab.plugins import get_model
from aelab.runs import load_run
from aelab.train import Trainer


def test_codes_of_a_dataset_as_npy_and_csv(tmp_path, capsys):
    data = load_data("digits")
    done = Trainer(get_model("autoencoder"), {"code_size": 6}, data, {"epochs": 1}).fit()
    assert main(["encode", done.run_id, "--out", str(tmp_path / "c.npy"), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["n"] == 1797 and summary["units"] == 6 and summary["data"] == "digits"
    codes = np.load(tmp_path / "c.npy")
    expected = ins.encode(load_run(done.run_id).model, data.x)
    assert codes.shape == (1797, 6) and np.allclose(codes, expected, atol=1e-6)
    out = tmp_path / "c.csv"
    assert main(["encode", done.run_id, "--out", str(out), "--labels"]) == 0
    header, first = out.read_text().splitlines()[:2]
    assert header == "z0,z1,z2,z3,z4,z5,label" and float(first.split(",")[-1]) == data.labels[0]
    assert main(["encode", done.run_id, "--out", str(out)]) == 1
    assert "pass --force" in capsys.readouterr().err


def test_flat_data_and_refusals(tmp_path, capsys):
    roll = load_data("swissroll")
    done = Trainer(get_model("autoencoder"), {"code_size": 2}, roll, {"epochs": 1}).fit()
    assert main(["encode", done.run_id, "--out", str(tmp_path / "r.csv")]) == 0
    assert np.loadtxt(tmp_path / "r.csv", delimiter=",", skiprows=1).shape == (len(roll), 2)
    assert main(["encode", done.run_id, "--data", "digits"]) == 1
    assert "samples of shape [1, 8, 8], but the model was trained on [3]" in capsys.readouterr().err
    gan = Trainer(get_model("gan"), {}, roll, {"epochs": 1}).fit()
    assert main(["encode", gan.run_id]) == 1
    assert "needs a model that can encode" in capsys.readouterr().err


def test_force_never_replaces_a_folder_with_a_file(tmp_path, capsys):
    roll = load_data("swissroll")
    done = Trainer(get_model("autoencoder"), {"code_size": 2}, roll, {"epochs": 1}).fit()
    keep = tmp_path / "codes.csv"
    keep.mkdir()
    (keep / "precious.txt").write_text("keep me")
    assert main(["encode", done.run_id, "--out", str(keep), "--force"]) == 1
    assert "is a folder, but this writes a file" in capsys.readouterr().err
    assert (keep / "precious.txt").read_text() == "keep me"
