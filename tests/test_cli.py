"""Each CLI command end to end, errors included: one line on stderr, non-zero exit, no traceback."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest

from aelab.cli import main
from aelab.plugins import get_models


def run_cli(args, capsys):
    code = main(args)
    out, err = capsys.readouterr()
    return code, out, err


def test_models_json_lists_schema(capsys):
    code, out, _ = run_cli(["models", "--json"], capsys)
    assert code == 0
    models = {m["id"]: m for m in json.loads(out)}
    ae = models["autoencoder"]
    assert set(ae) >= {"id", "name", "plugin", "description", "params"}
    props = ae["params"]["properties"]
    assert {"code_size", "layers", "nodes", "loss", "noise"} <= set(props)
    assert props["code_size"]["minimum"] == 1


def test_models_and_datasets_plain(capsys):
    code, out, _ = run_cli(["models"], capsys)
    assert code == 0 and "autoencoder" in out
    code, out, _ = run_cli(["datasets"], capsys)
    assert code == 0
    for name in ("digits", "shapes", "swissroll", ".npy", ".csv"):
        assert name in out


def test_train_json_events_and_final_line(capsys):
    code, out, _ = run_cli(
        [
            "train",
            "autoencoder",
            "--data",
            "digits",
            "-o",
            "code_size",
            "4",
            "--epochs",
            "2",
            "--json",
        ],
        capsys,
    )
    assert code == 0
    lines = [json.loads(line) for line in out.strip().splitlines()]
    kinds = {line.get("event") for line in lines[:-1]}
    assert {"start", "step", "epoch"} <= kinds
    last = lines[-1]
    assert set(last) >= {"run", "losses", "samples_per_s"}
    assert last["losses"]["total"] > 0 and last["samples_per_s"] > 0
    code, out, _ = run_cli(["runs"], capsys)
    assert last["run"] in out
    code, out, _ = run_cli(["eval", last["run"], "--json"], capsys)
    assert code == 0 and json.loads(out)["losses"]["total"] > 0


def test_train_progress_and_resume(capsys):
    code, out, err = run_cli(
        ["train", "autoencoder", "--epochs", "1", "-o", "code_size", "2"], capsys
    )
    assert code == 0
    assert "Run saved in" in out and "epoch 1/1" in err
    run_id = out.strip().splitlines()[-1].rsplit("/", 1)[-1]
    code, out, _ = run_cli(["train", "--resume", run_id, "--epochs", "1", "--json"], capsys)
    assert code == 0
    epochs = [json.loads(x)["epoch"] for x in out.splitlines() if '"event": "epoch"' in x]
    assert epochs == [2]


def test_train_on_a_user_file(tmp_path, capsys):
    rng = np.random.default_rng(0)
    path = tmp_path / "points.npy"
    np.save(path, rng.random((200, 10)).astype("float32"))
    code, out, _ = run_cli(
        [
            "train",
            "autoencoder",
            "--data",
            str(path),
            "-o",
            "code_size",
            "3",
            "-o",
            "nodes",
            "[16, 8]",
            "--epochs",
            "1",
            "--json",
        ],
        capsys,
    )
    assert code == 0
    assert json.loads(out.splitlines()[-1])["losses"]["total"] > 0


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["train", "nosuchmodel"], "Unknown model 'nosuchmodel'"),
        (["train", "autoencoder", "-o", "code_size", "0"], "'code_size' must be greater than"),
        (["train", "autoencoder", "-o", "depth", "3"], "Unknown option 'depth'"),
        (["train", "autoencoder", "--data", "nowhere.csv"], "nowhere.csv"),
        (["train", "autoencoder", "--epochs", "0"], "'epochs' must be greater than"),
        (["train", "--resume", "ghost"], "No saved run 'ghost'"),
        (["eval", "ghost"], "No saved run 'ghost'"),
    ],
)
def test_errors_are_one_line(args, fragment, capsys):
    code, out, err = run_cli(args, capsys)
    assert code != 0
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    assert fragment in lines[0]


def test_console_script_runs_without_traceback(tmp_path):
    env = {**os.environ, "AELAB_RUNS_DIR": str(tmp_path / "runs")}
    bin_dir = os.path.dirname(sys.executable)
    exe = os.path.join(bin_dir, "aelab")
    proc = subprocess.run(
        [exe, "train", "autoencoder", "-o", "loss", "huber"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 1
    assert proc.stderr.strip().startswith("error: ") and "Traceback" not in proc.stderr
    assert "'loss' must be 'mse' or 'bce'" in proc.stderr


def test_eval_passes_labels_to_a_conditional_model(capsys):
    code, out, _ = run_cli(["train", "cvae", "--epochs", "1", "--json"], capsys)
    assert code == 0
    run_id = json.loads(out.splitlines()[-1])["run"]
    code, out, err = run_cli(["eval", run_id, "--json"], capsys)
    assert code == 0, err
    losses = json.loads(out)["losses"]
    assert losses["total"] > 0 and "kl" in losses


@pytest.fixture(scope="module")
def png_folder(tmp_path_factory):
    """32 RGB 12×12 PNGs in two class sub-folders: bright squares and dark rings."""
    from PIL import Image

    root = tmp_path_factory.mktemp("pngs")
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:12, :12]
    for cls in ("squares", "rings"):
        (root / cls).mkdir()
        for i in range(16):
            cx, cy = rng.integers(4, 8, size=2)
            if cls == "squares":
                mask = (abs(xx - cx) < 3) & (abs(yy - cy) < 3)
            else:
                mask = abs(np.hypot(xx - cx, yy - cy) - 3) < 1
            img = np.zeros((12, 12, 3), np.uint8)
            img[mask] = rng.integers(120, 255, size=3)
            Image.fromarray(img).save(root / cls / f"{i}.png")
    return root


@pytest.mark.parametrize("model_id", sorted(get_models()))
def test_every_model_trains_on_an_image_folder(model_id, png_folder, capsys):
    code, out, err = run_cli(
        [
            "train",
            model_id,
            "--data",
            str(png_folder),
            "--epochs",
            "1",
            "--batch-size",
            "8",
            "-o",
            "code_size",
            "4" if model_id != "overcomplete" else "0",
            "--json",
        ],
        capsys,
    )
    assert code == 0, err
    last = json.loads(out.splitlines()[-1])
    assert last["status"] == "completed" and math.isfinite(last["losses"]["total"])
    start = json.loads(out.splitlines()[0])
    assert start["event"] == "start" and start["n_train"] + start["n_val"] == 32
