"""`aelab export` and `aelab infer` on a trained run, errors included, and the README consumer."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from aelab import runtime
from aelab.cli import main
from aelab.cli_export import read_image
from aelab.export import export_run, exports_root

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A run trained one epoch on digits, and a full export of it."""
    from aelab.data import load_data
    from aelab.plugins import get_model
    from aelab.train import Done, train

    base = tmp_path_factory.mktemp("cli")
    done = None
    for event in train(
        get_model("autoencoder"),
        {"code_size": 8},
        load_data("digits"),
        {"epochs": 1},
        runs_dir=str(base / "runs"),
    ):
        if isinstance(event, Done):
            done = event
    assert done is not None and done.status == "completed"
    export = export_run(done.run_dir, out_dir=base / "export")
    return Path(done.run_dir), done.run_id, export.folder


def _cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _one_line_error(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


def test_export_prints_the_folder_it_wrote(trained, capsys):
    run_dir, run_id, _ = trained
    code, out, err = _cli(capsys, "export", str(run_dir), "--graphs", "autoencoder")
    assert code == 0, err
    folder = exports_root() / run_id
    assert out.strip() == str(folder)
    assert "| autoencoder | input (N, 1, 8, 8)" in err
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["run_id"] == run_id and [g["name"] for g in manifest["graphs"]] == [
        "autoencoder"
    ]
    assert manifest["data"]["scaling"] == {"method": "divide", "scale": 16.0}

    # A second export to the same place needs --force, and says so in one line.
    code, out, err = _cli(capsys, "export", str(run_dir), "--graphs", "autoencoder")
    assert code == 1 and "already exists; pass --force" in _one_line_error(err)
    code, out, err = _cli(capsys, "export", str(run_dir), "--graphs", "encoder", "--force")
    assert code == 0, err
    assert sorted(p.name for p in folder.iterdir()) == ["encoder.onnx", "manifest.json"]
    assert [p.name for p in folder.parent.iterdir()] == [run_id]  # no temporary folders left


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--out", "../escape"], "must not contain '..'"),
        (["--graphs", "../../evil"], "Unknown graph '../../evil'"),
        (
            ["--graphs", "nope"],
            "Unknown graph 'nope'; this model exports: autoencoder, encoder, decoder",
        ),
    ],
)
def test_export_refuses_unsafe_or_unknown_names(
    trained, capsys, tmp_path, monkeypatch, extra, message
):
    monkeypatch.chdir(tmp_path)
    code, out, err = _cli(capsys, "export", str(trained[0]), *extra)
    assert code == 1 and message in _one_line_error(err)
    assert out == "" and not exports_root().exists() and not (tmp_path.parent / "escape").exists()


def test_export_of_a_missing_run_is_one_line(capsys):
    code, _, err = _cli(capsys, "export", "no-such-run")
    assert code == 1 and "No saved run 'no-such-run'" in _one_line_error(err)


def test_infer_npy_matches_runtime(trained, capsys, tmp_path):
    folder = trained[2]
    x = np.random.default_rng(0).random((3, 1, 8, 8), dtype=np.float32)
    np.save(tmp_path / "x.npy", x)
    code, out, err = _cli(
        capsys,
        "infer",
        str(folder),
        str(tmp_path / "x.npy"),
        "--graph",
        "encoder",
        "--out",
        str(tmp_path / "code.npy"),
        "--provider",
        "cpu",
    )
    assert code == 0, err
    assert out.strip() == str(tmp_path / "code.npy") and "CPUExecutionProvider" in err
    np.testing.assert_allclose(
        np.load(tmp_path / "code.npy"), runtime.load(folder).encode(x), atol=1e-6
    )


def test_infer_raw_npy_with_preprocess_and_npz(trained, capsys, tmp_path):
    folder = trained[2]
    raw = np.random.default_rng(1).integers(0, 17, (2, 8, 8))  # raw digits values, (N, H, W)
    np.save(tmp_path / "raw.npy", raw)
    code, _, err = _cli(
        capsys,
        "infer",
        str(folder),
        str(tmp_path / "raw.npy"),
        "--preprocess",
        "--out",
        str(tmp_path / "all.npz"),
    )
    assert code == 0, err
    with np.load(tmp_path / "all.npz") as got:
        assert list(got.keys()) == ["reconstruction"]
        want = runtime.load(folder).reconstruct(raw / 16.0)
        np.testing.assert_allclose(got["reconstruction"], want, atol=1e-6)


def test_infer_image_is_converted_and_scaled(trained, capsys, tmp_path):
    from PIL import Image

    folder = trained[2]
    rgb = np.zeros((16, 16, 3), np.uint8)
    rgb[4:12, 4:12] = 255  # a white square on black, RGB and twice the export's size
    Image.fromarray(rgb).save(tmp_path / "square.png")
    code, _, err = _cli(
        capsys,
        "infer",
        str(folder),
        str(tmp_path / "square.png"),
        "--graph",
        "encoder",
        "--out",
        str(tmp_path / "z.npy"),
    )
    assert code == 0, err
    pixels = read_image(
        tmp_path / "square.png", (1, 8, 8), {"scaling": {"method": "divide", "scale": 16.0}}
    )
    assert pixels.shape == (1, 1, 8, 8) and pixels.dtype == np.float32
    # 8-bit pixels map by /255 (digits' own 0..16 scale would clip them): white stays 1, black 0.
    assert pixels[0, 0, 3:5, 3:5].min() == 1.0 and pixels[0, 0, 0, 0] == 0.0
    np.testing.assert_allclose(
        np.load(tmp_path / "z.npy"), runtime.load(folder).encode(pixels), atol=1e-6
    )


@pytest.mark.parametrize(
    "array, extra, message",
    [
        (np.zeros((2, 7, 7), np.float32), [], "expects input 'input' of shape (N, 1, 8, 8)"),
        (np.zeros((1, 8), np.float32), ["--graph", "nope"], "no graph 'nope'; it has: autoencoder"),
        (np.array([{"a": 1}], dtype=object), [], "is not a plain .npy array"),
        (np.full((1, 1, 8, 8), 16.0, np.float32), [], "pass preprocess=True"),
    ],
)
def test_infer_errors_are_one_sentence(trained, capsys, tmp_path, array, extra, message):
    np.save(tmp_path / "in.npy", array, allow_pickle=True)
    code, out, err = _cli(
        capsys,
        "infer",
        str(trained[2]),
        str(tmp_path / "in.npy"),
        *extra,
        "--out",
        str(tmp_path / "o.npy"),
    )
    line = _one_line_error(err)
    assert code == 1 and message in line and line.endswith(".")
    assert not (tmp_path / "o.npy").exists()


def test_infer_on_a_missing_export(capsys, tmp_path):
    np.save(tmp_path / "x.npy", np.zeros((1, 64), np.float32))
    code, _, err = _cli(
        capsys,
        "infer",
        str(tmp_path / "none"),
        str(tmp_path / "x.npy"),
        "--out",
        str(tmp_path / "o.npy"),
    )
    assert code == 1 and "No export at" in _one_line_error(err)


def test_consumer_example_runs_without_aelab_or_torch(trained, tmp_path, run_consumer):
    folder = trained[2]
    raw = np.random.default_rng(2).integers(0, 17, (5, 1, 8, 8)).astype(np.float64)
    np.save(tmp_path / "raw.npy", raw)
    result = run_consumer(folder, tmp_path / "raw.npy", cwd=tmp_path)
    assert result["graph"] == "autoencoder" and result["outputs"] == {
        "reconstruction": [5, 1, 8, 8]
    }
    want = runtime.load(folder).reconstruct(raw, preprocess=True)
    assert result["means"]["reconstruction"] == pytest.approx(float(want.mean()), abs=1e-6)
    assert result["reconstruction_mse"] == pytest.approx(
        float(np.mean((want - raw / 16.0) ** 2)), abs=1e-6
    )


def test_infer_command_runs_without_torch(trained, tmp_path):
    x = np.random.default_rng(3).random((2, 64), dtype=np.float32)  # flat vectors are reshaped
    np.save(tmp_path / "x.npy", x)
    argv = ["infer", str(trained[2]), str(tmp_path / "x.npy"), "--out", str(tmp_path / "y.npy")]
    code = (
        "import sys\nsys.modules['torch'] = None\nfrom aelab.cli import main\n"
        f"sys.exit(main({argv!r}))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    want = runtime.load(trained[2]).reconstruct(x.reshape(2, 1, 8, 8))
    np.testing.assert_allclose(np.load(tmp_path / "y.npy"), want, atol=1e-6)
