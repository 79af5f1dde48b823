"""aelab eval and compare: a file is scored whole, the literature's figures (MSE, PSNR, SSIM, BCE,
the IWAE bound, the Fréchet distance) say how they were computed, several runs in one table."""

from __future__ import annotations

import json

import numpy as np
import pytest

import aelab
from aelab.assessment import likelihood_figures
from aelab.cli import main
from aelab.data import load_data


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A VAE (Bernoulli decoder), an autoencoder and a GAN trained briefly on digits."""
    out = {}
    for model, params in (
        ("vae", {"loss": "bce", "code_size": 4}),
        ("autoencoder", {}),
        ("gan", {}),
    ):
        out[model] = aelab.train(model, "digits", epochs=4, seed=0, progress=False, **params)
    return out


def _eval(capsys, *args) -> dict:
    assert main(["eval", *args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_a_separate_file_is_scored_whole(runs, tmp_path, capsys):
    digits = load_data("digits")
    path = tmp_path / "test.npy"
    np.save(path, np.round(digits.x[:500] * 16).astype(np.uint8))  # the raw 0-16 values
    own = _eval(capsys, str(runs["autoencoder"].path))
    assert own["split"] == "val" and own["n"] == 359
    whole = _eval(capsys, str(runs["autoencoder"].path), "--data", str(path))
    assert whole["split"] == "whole" and whole["n"] == 500 and whole["source"] == str(path)
    # scaled as the run's training data was (0-16), not by the file's own uint8 / 255
    same = runs["autoencoder"].evaluate(digits.subset(slice(0, 500)))
    assert whole["figures"]["mse"] == pytest.approx(same["figures"]["mse"], rel=1e-5)
    assert main(["eval", str(runs["autoencoder"].path), "--data", str(path), "--split", "val"]) == 1
    assert "scored whole" in capsys.readouterr().err


def test_reconstruction_figures_say_how_they_were_computed(runs, capsys):
    assert main(["eval", str(runs["vae"].path)]) == 0
    out = capsys.readouterr().out
    assert "MSE per element" in out and "PSNR dB" in out and "SSIM" in out
    assert "Reconstructions decoded from the posterior mean." in out
    figures = _eval(capsys, str(runs["autoencoder"].path))["figures"]
    assert figures["psnr"] == pytest.approx(10 * np.log10(1 / figures["mse"]))
    assert 0 < figures["ssim"] < 1 and figures["bce"] > 0


def test_the_importance_weighted_bound_tightens_with_more_samples(runs):
    vae = runs["vae"]
    _, val = load_data("digits").split(0.2, 0)
    figures = [likelihood_figures(vae.model, val, k, seed=0) for k in (1, 10, 100)]
    nll = [f["nll"] for f in figures]
    assert nll[0] == pytest.approx(-figures[0]["elbo"], rel=1e-6)  # one sample: the ELBO
    assert nll[2] < nll[1] < nll[0]
    assert all(f["nll"] <= -f["elbo"] + 1e-6 for f in figures)


def test_nll_is_printed_with_its_sample_count_and_refused_with_a_reason(runs, capsys):
    assert main(["eval", str(runs["vae"].path), "--nll-samples", "20"]) == 0
    assert "the importance-weighted bound with 20 samples" in capsys.readouterr().out
    figures = _eval(capsys, str(runs["autoencoder"].path), "--nll-samples", "5")["figures"]
    assert "nll" not in figures and "only VAEs" in figures["nll_note"]


def test_generators_get_a_frechet_distance_in_a_named_feature_space(runs, capsys):
    figures = _eval(capsys, str(runs["gan"].path), "--fd-samples", "300")["figures"]
    assert figures["fd_samples"] == 300 and "digits classifier" in figures["fd_features"]
    assert "mse" not in figures  # a GAN does not reconstruct
    elsewhere = _eval(capsys, str(runs["gan"].path), "--fd-samples", "0")["figures"]
    assert "fd" not in elsewhere


def test_compare_puts_runs_side_by_side(runs, capsys):
    ids = [str(runs["vae"].path), str(runs["autoencoder"].path)]
    assert main(["compare", *ids]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].startswith("| run | model | epochs") and len(table) == 4
    assert main(["compare", *ids, "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["runs"]
    assert [r["model"] for r in rows] == ["vae", "autoencoder"]
    assert all(r["epochs"] == 4 and r["samples_per_s"] > 0 for r in rows)


def test_options_take_key_equals_value(capsys):
    args = ["train", "autoencoder", "--epochs", "1", "--json"]
    assert main([*args, "-o", "code_size=5", "-o", "layers", "1"]) == 0
    run = json.loads(capsys.readouterr().out.splitlines()[-1])["run"]
    assert aelab.load(run).params.code_size == 5 and aelab.load(run).params.layers == 1
    with pytest.raises(SystemExit):
        main([*args, "-o", "code_size=5", "layers=1"])
    assert "KEY=VALUE or KEY VALUE" in capsys.readouterr().err
