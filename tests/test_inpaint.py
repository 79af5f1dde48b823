"""Inpainting: masks, iterative projection against simple fills on images and flat data, PNG
and CSV in and out, refusals, and the lab's /inpaint endpoint."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from gradio_client.exceptions import AppError
from labapi import client, train
from PIL import Image

from aelab.applications import ApplicationError
from aelab.apps.inpaint import (
    BASELINE_MEAN,
    BASELINE_NEIGHBOURS,
    InpaintParams,
    in_mask_mse,
    inpaint,
    inpaint_samples,
    make_mask,
    psnr_of,
)
from aelab.cli import main
from aelab.data import load_data
from aelab.plugins import get_model
from aelab.train import Trainer

CENTRE = InpaintParams(mask="rect")  # the centre quarter: 4 × 4 pixels of a digit
RANDOM = InpaintParams(mask="random", fraction=0.3, seed=1)


def _fit(model_id, params, data, folder, **config):
    """A model trained with a fixed seed, saved in its own folder (named by path, so every
    test's own runs folder can stay empty)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AELAB_RUNS_DIR", str(folder / "runs"))
        return Trainer(get_model(model_id), params, data, {"seed": 0, **config}).fit()


@pytest.fixture(scope="module")
def digits():
    return load_data("digits")


@pytest.fixture(scope="module")
def ae(digits, tmp_path_factory):
    """An autoencoder trained on 80% of the digits (the trainer holds out the rest)."""
    return _fit("autoencoder", {"code_size": 16}, digits, tmp_path_factory.mktemp("ae"), epochs=30)


@pytest.fixture(scope="module")
def split(digits):
    """The trainer's split of the digits: (training part, held-out part)."""
    return digits.split(0.2, 0)


@pytest.fixture(scope="module")
def flat(digits, tmp_path_factory):
    """Digits as a table: a CSV of 64 raw pixel values (0-16) per row, and an autoencoder
    trained on it, so the run's data is a flat CSV."""
    folder = tmp_path_factory.mktemp("flat")
    path = folder / "pixels.csv"
    raw = np.round(digits.x.reshape(len(digits.x), -1) * 16).astype(int)
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow([f"p{i}" for i in range(64)])
        writer.writerows(raw.tolist())
    data = load_data(str(path))
    assert data.kind == "flat" and data.sample_shape == (64,)
    return _fit("autoencoder", {"code_size": 16}, data, folder, epochs=30), raw


def test_masks_are_exact_seeded_and_refused_where_they_make_no_sense():
    hidden, kind = make_mask((3, 1, 8, 8), CENTRE)
    assert kind == "rect" and hidden.sum() == 3 * 16
    assert hidden[:, 0, 2:6, 2:6].all() and not hidden[:, 0, :2].any()
    hidden, kind = make_mask((5, 3, 8, 8), RANDOM)
    assert kind == "random" and (hidden.reshape(5, -1).sum(1) == 3 * 19).all()  # round(0.3·64)
    assert (hidden == hidden[:, :1]).all()  # whole pixels: every channel together
    assert np.array_equal(hidden, make_mask((5, 3, 8, 8), RANDOM)[0])
    other = make_mask((5, 3, 8, 8), InpaintParams(mask="random", seed=2))[0]
    assert not np.array_equal(hidden, other)
    # Flat data: auto means random, one value always stays known, and a rectangle is refused.
    hidden, kind = make_mask((4, 3), InpaintParams(fraction=0.95))
    assert kind == "random" and (hidden.sum(1) == 2).all()
    with pytest.raises(ApplicationError, match="A rect mask needs images"):
        make_mask((4, 3), CENTRE)
    whole = InpaintParams(mask="rect", rect_x=0, rect_y=0, rect_w=1, rect_h=1)
    with pytest.raises(ApplicationError, match="covers the whole image"):
        make_mask((1, 1, 8, 8), whole)


def test_the_error_counts_the_hole_only():
    a = np.zeros((2, 4), np.float32)
    b = a + np.array([0.1, 0.0, 0.0, 0.9], np.float32)
    hidden = np.array([[True, False, False, False]] * 2)
    assert in_mask_mse(a, b, hidden) == pytest.approx(0.01)  # the 0.9 outside is ignored
    assert psnr_of(0.01) == pytest.approx(20.0) and psnr_of(0.0) == 100.0


def test_the_model_beats_simple_fills_inside_the_hole(ae, split):
    train_x, held_out = split[0].x, split[1].x
    for params in (CENTRE, RANDOM):
        result = inpaint_samples(ae.model, held_out, params, train_x)
        s = result.to_json()
        assert s["psnr_model"] > s["psnr_baseline"] + 1.0, s
        assert set(s["baselines"]) == {BASELINE_MEAN, BASELINE_NEIGHBOURS}
        known = ~result.hidden
        assert np.array_equal(result.filled[known], held_out[known])  # known values stay
        assert np.isnan(result.masked[result.hidden]).all()
        curve = s["psnr_by_iteration"]
        assert len(curve) == 21 and curve[0] == s["baselines"][BASELINE_MEAN]["psnr"]
        # What honestly holds: the first step helps, plain projection peaks within a few steps
        # and then drifts, and keeping the most consistent iterate does at least as well as
        # keeping the last.
        assert curve[1] > curve[0] + 1.0 and max(curve[:6]) >= curve[-1]
        last = inpaint_samples(ae.model, held_out, params.model_copy(update={"select": "last"}))
        assert s["psnr_model"] >= last.to_json()["psnr_model"], (s, last.to_json())
    again = inpaint_samples(ae.model, held_out, RANDOM, train_x)
    assert np.array_equal(again.filled, result.filled)  # seeded and deterministic
    none = inpaint_samples(ae.model, held_out, CENTRE.model_copy(update={"iterations": 0}), train_x)
    assert np.array_equal(none.filled, none.baselines[BASELINE_MEAN])


def test_the_cli_scores_the_held_out_part(ae, capsys):
    run = str(ae.run_dir)
    assert main(["inpaint", run, "--json"]) == 0
    s = json.loads(capsys.readouterr().out)
    assert s["data"] == "digits (held-out part)" and s["n"] == 359 and s["kind"] == "image"
    assert s["mask"] == "rect" and s["rect"] == [0.25, 0.25, 0.5, 0.5]
    assert s["hidden_fraction"] == 0.25 and s["reference"].endswith("training part)")
    assert s["psnr_gain_vs_baseline"] > 1.0 and s["baseline"] == BASELINE_MEAN
    args = ["inpaint", run, "--mask", "random:0.5", "--iterations", "5", "--select", "last"]
    assert main([*args, "--data", "digits", "-n", "100"]) == 0
    text = capsys.readouterr().out
    assert "random 0.5, seed 0" in text and "in-mask PSNR" in text and "neighbour diffusion" in text
    assert "digits (100 samples)" in text


def test_flat_data_is_imputed_from_a_csv_with_empty_cells(flat, tmp_path, capsys):
    done, raw = flat
    run = str(done.run_dir)
    assert main(["inpaint", run, "--json"]) == 0  # the run's own CSV, held-out part
    s = json.loads(capsys.readouterr().out)
    assert s["kind"] == "flat" and s["mask"] == "random" and s["fraction"] == 0.3
    assert s["baseline"] == BASELINE_MEAN and s["psnr_gain_vs_baseline"] > 1.0, s
    assert main(["inpaint", run, "--mask", "rect:0.25,0.25,0.5,0.5"]) == 1
    assert "A rect mask needs images" in capsys.readouterr().err
    # Missing cells of a CSV (raw units) are filled where they are, and written back as CSV.
    rows = raw[:5].astype(object)
    gaps = np.random.default_rng(0).random(rows.shape) < 0.3
    rows[gaps] = ""
    src = tmp_path / "gaps.csv"
    with open(src, "w", newline="") as fh:
        csv.writer(fh).writerows([[f"p{i}" for i in range(64)], *rows.tolist()])
    out = tmp_path / "filled.csv"
    assert main(["inpaint", run, str(src), "--out", str(out), "--json"]) == 0
    s = json.loads(capsys.readouterr().out)
    assert s["mask"] == "given" and s["n"] == 5 and "psnr_model" not in s and s["files"] == 1
    with open(out, newline="") as fh:
        back = list(csv.reader(fh))
    assert back[0] == [f"p{i}" for i in range(64)]
    filled = np.array(back[1:], float)
    assert filled.shape == (5, 64) and np.isfinite(filled).all()
    assert np.allclose(filled[~gaps], raw[:5][~gaps], atol=1e-3)
    assert (filled[gaps] >= -1e-6).all() and (filled[gaps] <= 16 + 1e-6).all()
    assert main(["inpaint", run, str(src), "--mask", "random:0.2"]) == 1
    assert "marks its own missing values" in capsys.readouterr().err
    # The same with NaN in a .npy (scaled like the data), and a refused neighbours fill.
    scaled = np.where(gaps, np.nan, raw[:5] / 16.0).astype(np.float32)
    np.save(tmp_path / "gaps.npy", scaled)
    assert main(["inpaint", run, str(tmp_path / "gaps.npy"), "--out", str(tmp_path / "f.npy")]) == 0
    assert "given by the input (NaN values" in capsys.readouterr().out
    assert np.isfinite(np.load(tmp_path / "f.npy")).all()
    assert main(["inpaint", run, "--init", "neighbours"]) == 1
    assert "neighbours fill needs images" in capsys.readouterr().err


def test_a_png_in_gives_a_png_out(ae, split, tmp_path, capsys):
    run = str(ae.run_dir)
    digit = np.round(split[1].x[0, 0] * 255).astype(np.uint8)
    Image.fromarray(digit, "L").save(tmp_path / "in.png")
    out = tmp_path / "filled.png"
    assert main(["inpaint", run, str(tmp_path / "in.png"), "--out", str(out), "--json"]) == 0
    s = json.loads(capsys.readouterr().out)
    assert s["mask"] == "rect" and s["n"] == 1 and s["psnr_model"] is not None  # original known
    with Image.open(out) as img:
        assert img.size == (8, 8) and img.mode == "L"
        pixels = np.asarray(img)
    assert np.array_equal(pixels[:2], digit[:2])  # outside the hole the input is kept
    # Transparent pixels of a PNG are the hole: the bottom rows here.
    rgba = np.stack([digit, digit, digit, np.full_like(digit, 255)], axis=-1)
    rgba[5:, :, 3] = 0
    Image.fromarray(rgba, "RGBA").save(tmp_path / "hole.png")
    assert main(["inpaint", run, str(tmp_path / "hole.png"), "--json"]) == 0
    s = json.loads(capsys.readouterr().out)
    assert s["mask"] == "given" and s["hidden_fraction"] == 0.375 and "psnr_model" not in s
    # Several images: a folder of PNGs or an .npz; not one .png; never over an existing file.
    np.save(tmp_path / "three.npy", split[1].x[:3])
    args = ["inpaint", run, str(tmp_path / "three.npy"), "--json"]
    assert main([*args, "--out", str(tmp_path / "pngs")]) == 0
    assert json.loads(capsys.readouterr().out)["files"] == 3
    assert len(list((tmp_path / "pngs").glob("*.png"))) == 3
    assert main([*args, "--out", str(tmp_path / "all.npz")]) == 0
    capsys.readouterr()
    with np.load(tmp_path / "all.npz", allow_pickle=False) as z:
        assert set(z.files) == {"masked", "filled", "mask", "original"}
        assert z["filled"].shape == (3, 1, 8, 8) and z["mask"].sum() == 3 * 16
    assert main([*args, "--out", str(tmp_path / "one.png")]) == 1
    assert "3 filled images do not fit in one .png file" in capsys.readouterr().err
    assert main([*args, "--out", str(tmp_path / "all.npz")]) == 1
    assert "pass --force" in capsys.readouterr().err
    assert main([*args, "--out", str(tmp_path / "all.npz"), "--force"]) == 0
    capsys.readouterr()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_a_gan_is_refused_with_the_reason(capsys):
    gan = Trainer(get_model("gan"), {}, load_data("swissroll"), {"epochs": 1}).fit()
    assert main(["inpaint", gan.run_id]) == 1
    assert "Inpainting needs a model that can reconstruct" in capsys.readouterr().err
    with pytest.raises(ApplicationError, match="needs a model that can reconstruct"):
        inpaint(gan.model, np.zeros((2, 3), np.float32), None, InpaintParams())


@pytest.mark.parametrize(
    "args, message",
    [
        (["--mask", "circle"], "--mask must be rect:X,Y,W,H"),
        (["--mask", "rect:0.5,0.5"], "--mask must be rect:X,Y,W,H"),
        (["--mask", "random:lots"], "--mask must be rect:X,Y,W,H"),
        (["--mask", "random:1.5"], "'fraction' must be less than or equal to 0.95"),
        (["--iterations", "-1"], "'iterations' must be greater than or equal to 0"),
        (["BAD", "--data", "digits"], "not both"),
        (["BAD"], "has shape [5, 7], but the model takes samples of shape [1, 8, 8]"),
        (["notes.txt"], "must be a .npy or CSV file or a PNG/JPEG image"),
        (["pixels.csv"], "images of shape [1, 8, 8]; pass a .npy file or a PNG/JPEG image"),
    ],
)
def test_bad_input_gets_one_sentence(ae, tmp_path, capsys, args, message):
    np.save(tmp_path / "bad.npy", np.zeros((5, 7), np.float32))
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "pixels.csv").write_text("1,2,3\n")
    files = {"BAD": "bad.npy", "notes.txt": "notes.txt", "pixels.csv": "pixels.csv"}
    args = [str(tmp_path / files[a]) if a in files else a for a in args]
    assert main(["inpaint", str(ae.run_dir), *args]) == 1
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err


def test_a_bad_csv_names_the_row_and_column(flat, tmp_path, capsys):
    run = str(flat[0].run_dir)
    (tmp_path / "short.csv").write_text("1,2,3,4,5\n")
    assert main(["inpaint", run, str(tmp_path / "short.csv")]) == 1
    assert "row 1 has 5 columns, but the model takes 64 values" in capsys.readouterr().err
    (tmp_path / "word.csv").write_text(",".join(["1"] * 63 + ["x"]) + "\n" + "1," * 63 + "y\n")
    assert main(["inpaint", run, str(tmp_path / "word.csv")]) == 1
    assert "row 2, column 64 holds 'y', which is not a number" in capsys.readouterr().err


def test_the_lab_endpoint_fills_the_held_out_digits(lab):
    c = client(lab)
    train(c, "autoencoder", {"code_size": 16, "layers": 1, "nodes": 64}, epochs=10)
    args = ("auto", 0.25, 0.25, 0.5, 0.5, 0.3, 20, "mean", 0.5, "consistent", 0)
    img, scores, curve, values, caption = c.predict(*args, api_name="/inpaint")
    assert Path(img).is_file() and "359 held-out samples" in caption
    assert "aelab inpaint RUN --mask rect:0.25,0.25,0.5,0.5 --json" in caption
    table = {row[0]: row for row in scores["data"]}
    model = next(v for k, v in table.items() if k == "model (20 steps, consistent)")
    assert model[2] > table[BASELINE_MEAN][2] + 0.5 and BASELINE_NEIGHBOURS in table
    assert {row[2] for row in curve["data"]} >= {"projection step", "kept (consistent)"}
    with pytest.raises(AppError, match="'seed' must be greater than or equal to 0"):
        c.predict(*args[:-1], -1, api_name="/inpaint")
    gan = client(lab)
    train(gan, "gan", {}, epochs=1)
    with pytest.raises(AppError, match="needs a model that can reconstruct"):
        gan.predict(*args, api_name="/inpaint")
