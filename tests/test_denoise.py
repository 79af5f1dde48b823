"""Denoising: `aelab denoise` on images and flat data, PNG in and out, refusals."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from aelab.applications import ApplicationError
from aelab.apps.denoise import DenoiseParams, denoise, denoise_inputs, psnr, ssim
from aelab.cli import main
from aelab.data import load_data
from aelab.plugins import get_model
from aelab.train import Trainer


@pytest.fixture(scope="module")
def digits():
    return load_data("digits")


@pytest.fixture(scope="module")
def dae(digits, tmp_path_factory):
    """A denoising autoencoder trained on digits with Gaussian noise σ = 0.3, saved in its own
    folder (named by path, so every test's own runs folder can stay empty)."""
    params = {"noise": 0.3, "code_size": 32, "nodes": 256}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AELAB_RUNS_DIR", str(tmp_path_factory.mktemp("denoise") / "runs"))
        return Trainer(get_model("denoising"), params, digits, {"epochs": 20, "seed": 0}).fit()


def test_the_figures_are_sound():
    rng = np.random.default_rng(0)
    x = rng.random((4, 1, 8, 8)).astype(np.float32)
    assert np.allclose(psnr(x, x), 100.0) and np.allclose(ssim(x, x), 1.0, atol=1e-6)
    assert np.allclose(psnr(x * 0 + 0.5, x * 0 + 0.4), 20.0, atol=1e-4)  # MSE 0.01
    assert (ssim(np.clip(x + 0.2 * rng.standard_normal(x.shape), 0, 1), x) < 0.9).all()


def test_a_denoising_model_beats_the_noise_and_the_blur(dae, digits, capsys):
    held_out = digits.split(0.2, 0)[1].x
    result = denoise(dae.model, held_out, DenoiseParams(noise=0.3, seed=1))
    m = result.means()
    assert m["psnr_denoised"] - m["psnr_noisy"] > 1.5, m
    assert m["psnr_denoised"] > m["psnr_baseline"] and m["ssim_denoised"] > m["ssim_noisy"], m
    assert result.denoised.shape == held_out.shape and 0 <= result.denoised.min()
    again = denoise(dae.model, held_out, DenoiseParams(noise=0.3, seed=1))
    assert np.array_equal(again.noisy, result.noisy)  # the seed fixes the noise
    assert main(["denoise", str(dae.run_dir), "--data", "digits", "-n", "300", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["n"] == 300 and summary["data"] == "digits" and summary["kind"] == "image"
    assert summary["psnr_gain_vs_noisy"] > 1.5 and summary["psnr_gain_vs_baseline"] > 0
    assert summary["ssim_gain_vs_noisy"] > 0 and summary["baseline"] == "3x3 mean filter"
    # Without --data: the run's own held-out part, as text.
    assert main(["denoise", str(dae.run_dir), "--corruption", "mask", "--fraction", "0.2"]) == 0
    text = capsys.readouterr().out
    assert "held-out part" in text and "PSNR gain" in text and "SSIM gain" in text


def test_a_png_in_gives_a_png_out(dae, digits, tmp_path, capsys):
    noisy = denoise(dae.model, digits.x[:3], DenoiseParams()).noisy
    Image.fromarray(np.round(noisy[0, 0] * 255).astype(np.uint8), "L").save(tmp_path / "in.png")
    out = tmp_path / "clean.png"
    assert main(["denoise", str(dae.run_dir), str(tmp_path / "in.png"), "--out", str(out)]) == 0
    assert "Denoised 1 input(s)" in capsys.readouterr().out
    with Image.open(out) as img:
        assert img.size == (8, 8) and img.mode == "L"
    np.save(tmp_path / "three.npy", noisy)
    args = ["denoise", str(dae.run_dir), str(tmp_path / "three.npy"), "--json"]
    assert main([*args, "--out", str(tmp_path / "pngs")]) == 0
    assert json.loads(capsys.readouterr().out)["files"] == 3
    assert len(list((tmp_path / "pngs").glob("*.png"))) == 3
    assert main([*args, "--out", str(tmp_path / "d.npy")]) == 0
    capsys.readouterr()
    expected = denoise_inputs(dae.model, noisy).denoised
    assert np.allclose(np.load(tmp_path / "d.npy"), expected, atol=1e-6)
    assert main([*args, "--out", str(tmp_path / "one.png")]) == 1
    assert "3 denoised images do not fit in one .png file" in capsys.readouterr().err
    assert main([*args, "--out", str(tmp_path / "d.npy")]) == 1
    assert "pass --force" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_flat_data_is_scored_and_written_as_arrays(tmp_path, capsys):
    roll = load_data("swissroll")
    done = Trainer(get_model("denoising"), {"noise": 0.1}, roll, {"epochs": 2}).fit()
    out = tmp_path / "r.npy"
    assert main(["denoise", done.run_id, "-n", "50", "--out", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["kind"] == "flat" and summary["n"] == 50 and summary["ssim_denoised"] is None
    assert "flat data" in summary["baseline"] and summary["psnr_denoised"] is not None
    assert np.load(out).shape == (50, 3)
    assert main(["denoise", done.run_id, "--out", str(tmp_path / "folder")]) == 1
    assert "flat vectors, not images" in capsys.readouterr().err
    np.save(tmp_path / "x.npy", roll.x[:5])
    assert main(["denoise", done.run_id, str(tmp_path / "x.npy"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["n"] == 5


def test_a_gan_is_refused_with_the_reason(capsys):
    gan = Trainer(get_model("gan"), {}, load_data("swissroll"), {"epochs": 1}).fit()
    assert main(["denoise", gan.run_id]) == 1
    assert "needs a model that can reconstruct" in capsys.readouterr().err


def test_bad_input_gets_one_sentence(dae, tmp_path, capsys):
    np.save(tmp_path / "bad.npy", np.zeros((5, 7), np.float32))
    assert main(["denoise", str(dae.run_dir), str(tmp_path / "bad.npy")]) == 1
    err = capsys.readouterr().err
    assert "has shape [5, 7], but the model takes samples of shape [1, 8, 8]" in err
    assert err.count("\n") == 1
    (tmp_path / "notes.txt").write_text("hello")
    assert main(["denoise", str(dae.run_dir), str(tmp_path / "notes.txt")]) == 1
    assert "must be a .npy file or a PNG/JPEG image" in capsys.readouterr().err
    assert main(["denoise", str(dae.run_dir), str(tmp_path / "bad.npy"), "--data", "digits"]) == 1
    assert "not both" in capsys.readouterr().err
    with pytest.raises(ApplicationError, match="takes samples of shape"):
        denoise(dae.model, np.zeros((2, 64), np.float32), DenoiseParams())
