"""Hardening of inputs (issue 12): data whose scaling would overflow, bad files, bad run records,
bad arguments; each answered with one sentence naming the input and what is expected.

Every file is real (written into tmp_path) and read by the real readers and the real CLI.
"""

from __future__ import annotations

import json
import pickle
import shutil
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from aelab.cli import main
from aelab.data import Dataset, load_data
from aelab.errors import DataError

RAW = ("Traceback", "ValueError", "RuntimeError", "TypeError", "OverflowError", "Something went")


def one_sentence(message: str, *names: str) -> str:
    """One line, one sentence, no raw exception text, naming every one of ``names``."""
    message = message.strip()
    assert "\n" not in message and message.endswith("."), message
    assert message.count(". ") == 0, message
    assert not any(raw in message for raw in RAW), message
    for name in names:
        assert name in message, (name, message)
    return message


def refused(path: Path, **kwargs) -> str:
    with pytest.raises(DataError) as err:
        load_data(path, **kwargs)
    return one_sentence(str(err.value), path.name)


def cli(capsys, *argv: str) -> tuple[int, str]:
    """Run ``aelab argv``; the exit status and its stderr (which must be one line)."""
    try:
        code = main(list(argv))
    except SystemExit as exc:  # argparse's own exits
        code = exc.code
    err = capsys.readouterr().err.strip()
    return code, err


def _table(seed: int = 0, n: int = 12, d: int = 3, dtype=np.float64) -> np.ndarray:
    return np.random.default_rng(seed).random((n, d)).astype(dtype)


# -- 1. values that overflow ------------------------------------------------------------------
def _overflow_files(tmp: Path) -> dict[str, tuple[Path, tuple[str, ...]]]:
    """Each file, with the phrases its message must hold (the column or index, the value)."""
    out = {}
    x = _table()
    x[2, 1], x[5, 1] = 1e308, -1e308
    np.save(tmp / "f64.npy", x)
    out["float64 ±1e308"] = (tmp / "f64.npy", ("index [:, 1]", "1e+308", "32-bit"))
    x = _table(dtype=np.float32)
    x[1, 2], x[4, 2] = 3e38, -3e38
    np.save(tmp / "f32.npy", x)
    out["float32 ±3e38"] = (tmp / "f32.npy", ("index [:, 2]", "-3e+38 to 3e+38", "range"))
    x = _table()
    x[7, 0] = 1.7e308
    np.save(tmp / "one_huge.npy", x)
    out["float64 1.7e308 alone"] = (tmp / "one_huge.npy", ("index [:, 0]", "1.7e+308"))
    x = _table(dtype=np.float32)
    x[0, 0], x[1, 0] = 3.3e38, -3.3e38
    np.savez(tmp / "f32.npz", x=x, y=np.arange(12) % 2)
    out["npz float32 ±3.3e38"] = (tmp / "f32.npz", ("index [:, 0]", "range"))
    images = np.random.default_rng(1).random((6, 8, 8))
    images[3, 4, 4] = -1e300
    np.save(tmp / "images.npy", images)
    out["images -1e300"] = (tmp / "images.npy", ("its values", "[3, 0, 4, 4]", "-1e+300"))
    (tmp / "big.csv").write_text("a,b\n1,2\n3,1e308\n5,-1e308\n7,8\n")
    out["CSV ±1e308"] = (tmp / "big.csv", ("column 'b'", "1e+308"))
    (tmp / "one.csv").write_text("a,b\n1,2\n3,1e300\n5,6\n")
    out["CSV 1e300 alone"] = (tmp / "one.csv", ("column 'b'", "1e+300"))
    (tmp / "noheader.csv").write_text("1,2\n3,1e308\n5,6\n")
    out["CSV without header"] = (tmp / "noheader.csv", ("column 2", "1e+308"))
    (tmp / "label.csv").write_text("x,label,z\n1,0,3e38\n2,1,-3e38\n3,0,1\n")
    out["CSV with label column"] = (tmp / "label.csv", ("column 'z'", "range"))
    return out


OVERFLOW = [
    "float64 ±1e308",
    "float32 ±3e38",
    "float64 1.7e308 alone",
    "npz float32 ±3.3e38",
    "images -1e300",
    "CSV ±1e308",
    "CSV 1e300 alone",
    "CSV without header",
    "CSV with label column",
]


@pytest.mark.parametrize("case", OVERFLOW)
def test_values_that_overflow_are_refused_naming_the_file_and_column(tmp_path, case):
    path, phrases = _overflow_files(tmp_path)[case]
    message = refused(path)
    assert all(p in message for p in phrases), message
    assert "NaN" not in message and "learning rate" not in message, message


def _nonfinite_files(tmp: Path) -> dict[str, tuple[Path, tuple[str, ...]]]:
    x = _table()
    x[3, 2] = np.inf
    np.save(tmp / "inf.npy", x)
    x = _table(dtype=np.float32)
    x[4, 0] = np.nan
    np.savez(tmp / "nan.npz", x=x)
    (tmp / "huge.csv").write_text("a,b\n1,2\n3,1e400\n5,6\n")
    (tmp / "nan.csv").write_text("a,b\n1,nan\n3,4\n5,6\n")
    return {
        "inf in .npy": (tmp / "inf.npy", ("[3, 2]",)),
        "NaN in .npz": (tmp / "nan.npz", ("[4, 0]",)),
        "1e400 in CSV": (tmp / "huge.csv", ("row 3", "column 'b'")),
        "nan in CSV": (tmp / "nan.csv", ("row 2", "column 'b'")),
    }


@pytest.mark.parametrize("case", ["inf in .npy", "NaN in .npz", "1e400 in CSV", "nan in CSV"])
def test_non_finite_values_are_refused_where_they_are(tmp_path, case):
    """Already refused before issue 12: kept as regression tests."""
    path, phrases = _nonfinite_files(tmp_path)[case]
    message = refused(path)
    assert "NaN or infinite" in message and all(p in message for p in phrases), message


def test_a_series_that_overflows_does_not_blame_the_learning_rate(tmp_path, capsys):
    """Cut into windows, ±1e308 used to become NaN and 'Try a lower learning rate'."""
    values = np.random.default_rng(0).random((200, 2))
    values[50, 1], values[60, 1] = 1e308, -1e308
    np.save(tmp_path / "series.npy", values)
    code, err = cli(capsys, "train", "autoencoder", "--data", str(tmp_path / "series.npy"),
                    "--series", "--window", "16", "--epochs", "1")  # fmt: skip
    assert code == 1 and err.startswith("error: "), err
    one_sentence(err, "series.npy", "index [:, 1]", "1e+308")
    assert "learning rate" not in err


def test_a_series_csv_that_overflows_names_its_column(tmp_path):
    rows = ["t,a,b"] + [f"{i},{i % 7},{3e38 if i == 20 else -3e38 if i == 30 else i}" for i in
                        range(80)]  # fmt: skip
    (tmp_path / "series.csv").write_text("\n".join(rows) + "\n")
    message = refused(tmp_path / "series.csv", series={"window": 16})
    assert "column 'b'" in message and "range" in message, message


def test_a_dataset_of_values_float32_cannot_hold_is_refused(tmp_path):
    """What a third-party reader builds itself passes through Dataset: 1e300 never becomes inf."""
    x = _table()
    x[1, 1] = 1e300
    with pytest.raises(DataError) as err:
        Dataset("mine", x=x, kind="flat")
    one_sentence(str(err.value), "Dataset 'mine'", "[1, 1]", "1e+300")


# -- 2. bad files: one sentence naming the file and what is expected --------------------------
def _bad_files(tmp: Path) -> dict[str, tuple[Path, tuple[str, ...]]]:
    np.save(tmp / "zero.npy", np.zeros((10, 0)))
    np.save(tmp / "scalar.npy", np.float64(3.0))
    np.save(tmp / "objects.npy", np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    np.savez(tmp / "objects.npz", x=np.array([[1, "a"], [None, 2]], dtype=object))
    (tmp / "pickled.npy").write_bytes(pickle.dumps(np.ones((3, 3))))
    (tmp / "text.npy").write_text("hello, this is not an array\n")
    (tmp / "empty.npy").write_bytes(b"")
    (tmp / "ragged.csv").write_text("a,b\n1,2\n3\n4,5\n")
    (tmp / "words.csv").write_text("a,b\n1,2\n3,four\n5,6\n")
    (tmp / "empty.csv").write_text("")
    (tmp / "header.csv").write_text("a,b\n")
    return {
        "zero features": (tmp / "zero.npy", ("(10, 0)", "no values")),
        "0-d array": (tmp / "scalar.npy", ("shape ()", "samples, features")),
        "object .npy": (tmp / "objects.npy", ("object array", "never loads pickles")),
        "object .npz": (tmp / "objects.npz", ("object array", "never loads pickles")),
        "pickle as .npy": (tmp / "pickled.npy", ("pickle", "never loads pickles")),
        "text as .npy": (tmp / "text.npy", ("not a valid .npy",)),
        "empty .npy": (tmp / "empty.npy", ("empty",)),
        "ragged CSV": (tmp / "ragged.csv", ("row 3", "same number of columns")),
        "text in CSV": (tmp / "words.csv", ("column 'b'", "'four'", "must be a number")),
        "empty CSV": (tmp / "empty.csv", ("empty",)),
        "header-only CSV": (tmp / "header.csv", ("no data rows",)),
    }


# Already one sentence before issue 12 (kept as regression tests): 0-d, text/empty .npy, CSVs.
@pytest.mark.parametrize(
    "case",
    [
        "zero features",
        "0-d array",
        "object .npy",
        "object .npz",
        "pickle as .npy",
        "text as .npy",
        "empty .npy",
        "ragged CSV",
        "text in CSV",
        "empty CSV",
        "header-only CSV",
    ],
)
def test_a_bad_data_file_is_one_sentence(tmp_path, case):
    path, phrases = _bad_files(tmp_path)[case]
    message = refused(path)
    assert all(p in message for p in phrases), message


def _bomb_png(path: Path, side: int = 30000) -> Path:
    """A tiny PNG whose header claims side x side pixels (Pillow's DecompressionBombError)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )
    return path


def test_an_image_bomb_in_a_folder_is_named(tmp_path):
    folder = tmp_path / "pictures"
    folder.mkdir()
    for i in range(3):
        pixels = np.random.default_rng(i).integers(0, 256, (8, 8), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"ok{i}.png")
    _bomb_png(folder / "bomb.png")
    with pytest.raises(DataError) as err:
        load_data(folder)
    one_sentence(str(err.value), "bomb.png", "pixels", "too large")


@pytest.fixture(scope="module")
def saved_run(tmp_path_factory):
    """A one-epoch run of an autoencoder on digits (8x8 images), in a runs folder of its own."""
    root = tmp_path_factory.mktemp("hardening_runs")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AELAB_RUNS_DIR", str(root))
        code = main(["train", "autoencoder", "--epochs", "1", "--seed", "0", "-o", "code_size",
                     "2", "-o", "layers", "1", "-o", "nodes", "16", "--json"])  # fmt: skip
    assert code == 0
    (folder,) = [p for p in root.iterdir() if (p / "run.json").is_file()]
    return folder


def test_eval_on_data_of_another_shape_is_one_sentence(saved_run, tmp_path, capsys):
    np.save(tmp_path / "five.npy", _table(d=5))
    code, err = cli(capsys, "eval", str(saved_run), "--data", str(tmp_path / "five.npy"))
    assert code == 1, err
    one_sentence(err, "five.npy", "[5]", "[1, 8, 8]")


BAD_RECORDS = {
    '"epochs": "ten"': (("train", "epochs"), "ten", ("'train'", "'epochs'")),
    '"history": 5': (("history",), 5, ("'history'", "list")),
    '"history": [5]': (("history",), [5], ("'history'", "item 0")),
    '"params": []': (("params",), [], ("'params'", "record")),
    '"data": 5': (("data",), 5, ("'data'", "record")),
    '"sample_shape": "abc"': (("sample_shape",), "abc", ("'sample_shape'", "whole numbers")),
    '"model": 5': (("model",), 5, ("'model'", "model id")),
    '"sha256": 5': (("sha256",), 5, ("'sha256'", "record")),
}


@pytest.mark.parametrize("case", list(BAD_RECORDS))
def test_a_run_json_with_wrong_types_names_the_file_and_field(saved_run, tmp_path, capsys, case):
    keys, value, phrases = BAD_RECORDS[case]
    run = tmp_path / "runs" / saved_run.name
    shutil.copytree(saved_run, run)
    meta = json.loads((run / "run.json").read_text())
    target = meta
    for key in keys[:-1]:
        target = target[key]
    target[keys[-1]] = value
    (run / "run.json").write_text(json.dumps(meta))
    for command in (["eval", run.name], ["export", run.name], ["train", "--resume", run.name]):
        code, err = cli(capsys, *command)
        assert code == 1, (command, err)
        one_sentence(err, "run.json", *phrases)
    code, err = cli(capsys, "runs", "--json")  # the list never fails on one damaged run
    assert code == 0 and err == "", err


@pytest.mark.parametrize(
    "argv",
    [
        ["export", "RUN", "--out", ""],
        ["infer", "EXPORT", "input.npy", "--out", ""],
        ["encode", "RUN", "--out", ""],
        ["anomaly", "RUN", "--out", " "],
        ["denoise", "RUN", "--out", ""],
    ],
    ids=["export", "infer", "encode", "anomaly", "denoise"],
)
def test_an_empty_out_is_one_sentence(saved_run, capsys, argv):
    argv = [str(saved_run) if a == "RUN" else a for a in argv]
    code, err = cli(capsys, *argv)
    assert code == 1, err
    one_sentence(err, "--out is empty")


@pytest.mark.parametrize(
    "argv, where",
    [
        (["ui", "--port", "70000", "--no-browser"], "--port"),
        (["ui", "--port", "0", "--no-browser"], "--port"),
    ],
    ids=["70000", "0"],
)
def test_a_port_out_of_range_is_one_sentence(capsys, argv, where):
    code, err = cli(capsys, *argv)
    assert code == 1, err
    one_sentence(err, where, "1 to 65535")


def test_launch_py_refuses_a_negative_port(capsys, monkeypatch):
    from aelab.ui.launcher import main as launch

    assert launch(["--port", "-1", "--no-browser"]) == 1
    one_sentence(capsys.readouterr().err, "--port", "1 to 65535", "-1")
    monkeypatch.setenv("AELAB_PORT", "99999")
    assert launch(["--no-browser"]) == 1
    one_sentence(capsys.readouterr().err, "AELAB_PORT", "99999")


# -- 3. argument errors are one line ----------------------------------------------------------
ARGUMENT_ERRORS = {
    "unknown flag": (["runs", "--bogus"], "unrecognized arguments: --bogus"),
    "unknown top-level flag": (["--bogus"], "unrecognized arguments: --bogus"),
    "missing argument": (["eval"], "required: run"),
    "missing option value": (["train", "--epochs"], "expected one argument"),
    "bad int": (["train", "--epochs", "ten"], "invalid int value: 'ten'"),
    "bad float": (["train", "--lr", "fast"], "invalid float value: 'fast'"),
    "bad choice": (["eval", "RUN", "--split", "some"], "invalid choice: 'some'"),
    "unknown command": (["trian"], "invalid choice: 'trian'"),
    "application's bad choice": (["denoise", "RUN", "--corruption", "x"], "invalid choice: 'x'"),
    "application's missing run": (["encode"], "required: run"),
    "plugins dir without a value": (["--plugins-dir"], "expected one argument"),
}


@pytest.mark.parametrize("case", list(ARGUMENT_ERRORS))
def test_argument_errors_are_one_line(capsys, case):
    argv, phrase = ARGUMENT_ERRORS[case]
    code, err = cli(capsys, *argv)
    assert code == 2, err
    assert err.startswith("error: ") and "usage:" not in err, err
    one_sentence(err, phrase, "--help")


def test_help_is_unchanged(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["eval", "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: aelab eval") and "--split {all,val}" in out
