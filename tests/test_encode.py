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


def test_a_sweep_retrains_per_code_size_and_sets_pca_beside_it(tmp_path, capsys):
    from aelab.apps.encode import SweepParams, sweep

    digits = load_data("digits")
    config = {"epochs": 2, "seed": 0}
    done = Trainer(get_model("autoencoder"), {"code_size": 3}, digits, config).fit()
    out = tmp_path / "sweep.csv"
    assert main(["encode", done.run_id, "--sweep", "8,2", "--out", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    rows = summary["rows"]
    assert [r["code_size"] for r in rows] == [2, 8] and summary["n_val"] == 359
    assert rows[1]["pca_mse"] < rows[0]["pca_mse"]  # more components, less error
    # Each row is the model trained alone at that size with the run's settings.
    alone = Trainer(get_model("autoencoder"), {"code_size": 8}, digits, config, save=False).fit()
    val = digits.split(0.2, 0)[1]
    assert rows[1]["model_mse"] == round(ins.mse(ins.reconstruct(alone.model, val.x), val.x), 6)
    assert out.read_text().splitlines()[0] == "code_size,model_mse,pca_mse,pca_explained,status"
    # The run's own settings are kept: a sweep result equals the in-process call.
    run = load_run(done.run_id)
    again = sweep(run.spec, run.params, run.config, digits, SweepParams(sizes=[2]))
    assert again.rows[0] == rows[0]


def test_a_sweep_refuses_what_it_cannot_measure(capsys):
    roll = load_data("swissroll")
    done = Trainer(get_model("autoencoder"), {"code_size": 2}, roll, {"epochs": 1}).fit()
    assert main(["encode", done.run_id, "--sweep", "two"]) == 1
    assert "whole numbers separated by commas" in capsys.readouterr().err
    assert main(["encode", done.run_id, "--sweep", "2,5000"]) == 1
    assert "Code size 5000 cannot be swept" in capsys.readouterr().err
    assert main(["encode", done.run_id, "--sweep", "2", "--out", "s.npy"]) == 1
    assert "a .csv file" in capsys.readouterr().err
    assert main(["encode", done.run_id, "--sweep", "1,3"]) == 1
    assert (
        "Code size 3 cannot be swept: A code of 3 units is not smaller" in capsys.readouterr().err
    )
    config = {"epochs": 1, "val_fraction": 0}
    whole = Trainer(get_model("autoencoder"), {"code_size": 2}, roll, config).fit()
    assert main(["encode", whole.run_id, "--sweep", "2"]) == 1
    assert "validation fraction above 0" in capsys.readouterr().err


def test_written_files_get_the_usual_permissions(tmp_path):
    import os

    from aelab.apps.output import atomic_output

    mask = os.umask(0o022)
    try:
        with atomic_output(tmp_path / "out.csv") as tmp:
            tmp.write_text("x\n")
    finally:
        os.umask(mask)
    assert (tmp_path / "out.csv").stat().st_mode & 0o777 == 0o644
