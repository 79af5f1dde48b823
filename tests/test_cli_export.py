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
from aelab.cli_export import _as_images, read_image
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
        (np.full((1, 1, 8, 8), 16.0, np.float32), [], "from 16 to 16; pass --preprocess"),
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


def test_export_json_is_one_line(trained, capsys, tmp_path):
    out_dir = tmp_path / "enc"
    code, out, err = _cli(
        capsys, "export", str(trained[0]), "--graphs", "encoder", "--out", str(out_dir), "--json"
    )
    assert code == 0, err
    assert out.count("\n") == 1
    got = json.loads(out)
    assert got["folder"] == str(out_dir) and [g["name"] for g in got["manifest"]["graphs"]] == [
        "encoder"
    ]


def _infer(capsys, folder, *argv: str) -> tuple[int, str, str]:
    return _cli(capsys, "infer", str(folder), *map(str, argv), "--provider", "cpu")


def test_infer_reads_a_csv_like_a_training_csv(trained, capsys, tmp_path):
    folder = trained[2]
    raw = np.random.default_rng(4).integers(0, 17, (3, 64))
    header = ",".join([*(f"p{i}" for i in range(64)), "label"])
    rows = [",".join(map(str, [*r, 7])) for r in raw]  # a label column, left out as in training
    (tmp_path / "raw.csv").write_text("\n".join([header, *rows]) + "\n")
    code, out, err = _infer(
        capsys, folder, tmp_path / "raw.csv", "--preprocess", "--out", tmp_path / "r.npy"
    )
    assert code == 0, err
    want = runtime.load(folder).reconstruct(raw.reshape(3, 1, 8, 8) / 16.0)
    np.testing.assert_allclose(np.load(tmp_path / "r.npy"), want, atol=1e-6)


def test_infer_reads_the_image_types_of_the_labs_quick_check(trained, capsys, tmp_path):
    from PIL import Image

    pixels = np.random.default_rng(5).integers(0, 256, (8, 8), dtype=np.uint8)
    Image.fromarray(pixels, "L").save(tmp_path / "in.bmp")
    code, _, err = _infer(
        capsys, trained[2], tmp_path / "in.bmp", "--graph", "encoder", "--out", tmp_path / "z.npy"
    )
    assert code == 0, err
    want = runtime.load(trained[2]).encode(pixels[None, None] / 255.0)
    np.testing.assert_allclose(np.load(tmp_path / "z.npy"), want, atol=1e-5)


def test_infer_on_a_folder_says_what_to_pass(trained, capsys, tmp_path):
    (tmp_path / "inputs").mkdir()
    code, out, err = _infer(capsys, trained[2], tmp_path / "inputs", "--out", tmp_path / "o.npy")
    assert code == 1 and out == ""
    assert _one_line_error(err) == (
        f"error: {tmp_path / 'inputs'} is a folder; pass a .npy, .csv or image file."
    )


def _png_pixels(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as img:
        assert img.format == "PNG" and img.mode == "L"
        return np.asarray(img)


def test_infer_writes_images_as_png(trained, capsys, tmp_path):
    folder = trained[2]
    x = np.random.default_rng(6).random((3, 1, 8, 8), dtype=np.float32)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "one.npy", x[:1])
    want = np.rint(np.clip(runtime.load(folder).reconstruct(x), 0, 1) * 255).astype(np.uint8)

    code, out, err = _infer(capsys, folder, tmp_path / "one.npy", "--out", tmp_path / "r.png")
    assert code == 0, err
    assert out.strip() == str(tmp_path / "r.png")
    np.testing.assert_array_equal(_png_pixels(tmp_path / "r.png"), want[0, 0])

    code, out, err = _infer(capsys, folder, tmp_path / "x.npy", "--out", f"{tmp_path / 'pngs'}/")
    assert code == 0, err
    names = sorted(p.name for p in (tmp_path / "pngs").iterdir())
    assert names == ["00000.png", "00001.png", "00002.png"]
    for i, name in enumerate(names):
        np.testing.assert_array_equal(_png_pixels(tmp_path / "pngs" / name), want[i, 0])
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary files


@pytest.mark.parametrize(
    "input_, extra, out, message",
    [
        (
            "x.npy",
            [],
            "r.png",
            "Output 'reconstruction' holds 3 images, but r.png takes one; "
            "name a folder such as out/ for one PNG per sample.",
        ),
        (
            "x.npy",
            ["--graph", "encoder"],
            "codes/",
            "Output 'code' of graph 'encoder' has shape "
            "(3, 8), not images (N, C, H, W) with 1 or 3 channels; write it to a .npy or .npz file.",
        ),
        (
            "x.npy",
            [],
            "r.jpg",
            "--out must end in .npy (first output), .npz (all outputs) or "
            ".png (one image), or name a folder such as out/ (one PNG per sample), not 'r.jpg'.",
        ),
    ],
)
def test_infer_png_output_errors(trained, capsys, tmp_path, input_, extra, out, message):
    np.save(tmp_path / "x.npy", np.random.default_rng(7).random((3, 1, 8, 8), dtype=np.float32))
    code, stdout, err = _infer(
        capsys, trained[2], tmp_path / input_, *extra, "--out", tmp_path / out
    )
    assert code == 1 and stdout == ""
    assert _one_line_error(err) == f"error: {message}"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.npy"]  # nothing written


def test_png_output_must_be_in_the_unit_range():
    with pytest.raises(
        runtime.RuntimeInputError, match=r"runs from -0.5 to 1, outside the \[0, 1\]"
    ):
        _as_images(np.array([-0.5, 1.0], np.float32).reshape(1, 1, 1, 2), "y", "decoder")
    # float rounding at the edges is no error, and maps to 0 and 255
    pixels = _as_images(np.array([-1e-6, 1 + 1e-6], np.float32).reshape(1, 1, 1, 2), "y", "g")
    np.testing.assert_array_equal(pixels, [[[0, 255]]])


@pytest.mark.parametrize("out", ["o.npy", "o.npz", "o.png", "pngs/"])
def test_infer_never_overwrites_without_force(trained, capsys, tmp_path, out):
    folder, target = trained[2], tmp_path / out.rstrip("/")
    rng = np.random.default_rng(8)
    np.save(tmp_path / "a.npy", rng.random((1, 1, 8, 8), dtype=np.float32))
    np.save(tmp_path / "b.npy", rng.random((1, 1, 8, 8), dtype=np.float32))

    def written() -> bytes:
        return (
            b"".join(p.read_bytes() for p in sorted(target.iterdir()))
            if target.is_dir()
            else target.read_bytes()
        )

    code, _, err = _infer(capsys, folder, tmp_path / "a.npy", "--out", tmp_path / out)
    assert code == 0, err
    first = written()
    code, stdout, err = _infer(capsys, folder, tmp_path / "b.npy", "--out", tmp_path / out)
    assert code == 1 and stdout == ""
    assert _one_line_error(err) == (
        f"error: {target} exists; pass --force to replace it, or name another path."
    )
    assert written() == first
    code, _, err = _infer(capsys, folder, tmp_path / "b.npy", "--out", tmp_path / out, "--force")
    assert code == 0, err
    assert written() != first
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["a.npy", "b.npy", target.name])


def test_infer_force_replaces_only_a_folder_of_pngs(trained, capsys, tmp_path):
    np.save(tmp_path / "x.npy", np.random.default_rng(9).random((2, 1, 8, 8), dtype=np.float32))
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    code, _, err = _infer(
        capsys, trained[2], tmp_path / "x.npy", "--out", tmp_path / "mine", "--force"
    )
    assert code == 1 and "holds other files than PNG images (such as 'notes.txt')" in err
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"
