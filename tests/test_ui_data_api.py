"""Data in the lab through its endpoints: uploads named as the user named them, zips unpacked
safely, runs that remember their data, and no run continued on data of another shape."""

from __future__ import annotations

import hashlib
import json
import os
import stat
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("gradio_client")
from gradio_client import handle_file  # noqa: E402
from gradio_client.exceptions import AppError  # noqa: E402
from labapi import client  # noqa: E402

from aelab.cli import main  # noqa: E402
from aelab.errors import DataError  # noqa: E402
from aelab.ui import uploads  # noqa: E402

SMALL = {"code_size": 2, "layers": 1, "nodes": 16}
ONE_EPOCH = {"epochs": 1, "seed": 0}


def one_sentence(message: str, name: str) -> None:
    """A message for the user: one line naming their file, never a server path or a trace."""
    assert name in message, message
    assert "\n" not in message.strip() and "Traceback" not in message, message
    assert tempfile.gettempdir() not in message and "gradio" not in message, message
    assert message.strip().endswith("."), message


def write_png(path: Path, size: int = 8, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (size, size), dtype=np.uint8)).save(path)
    return path


def write_zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def png_bytes(size: int = 8, seed: int = 0) -> bytes:
    import io

    buf = io.BytesIO()
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (size, size), dtype=np.uint8)).save(buf, "PNG")
    return buf.getvalue()


def write_table(path: Path, rows: int = 60, cols: int = 13, seed: int = 0) -> Path:
    header = ",".join(f"f{i}" for i in range(cols))
    rng = np.random.default_rng(seed)
    np.savetxt(path, rng.random((rows, cols)), delimiter=",", header=header, comments="")
    return path


def train_upload(c, files, model: str = "autoencoder", params=None, *series):
    """/train on uploaded file(s) (a list is sent as several files), one epoch."""
    upload = (
        [handle_file(str(f)) for f in files] if isinstance(files, list) else handle_file(str(files))
    )
    return c.predict(
        model, "uploaded file", upload, params or SMALL, ONE_EPOCH, *series, api_name="/train"
    )


# -- every load error names the user's file ---------------------------------------------------


def _bad_uploads(folder: Path) -> dict[str, tuple[Path, str]]:
    """Each bad upload, with a phrase its message must hold."""
    (folder / "my_data.csv").write_text("a,b\n1,2\n3,oops\n")
    (folder / "weights.npy").write_bytes(b"not an array at all")
    write_zip(folder / "empty.zip", {})
    write_zip(folder / "notes.zip", {"notes/readme.txt": b"hello", "notes/more.txt": b"hi"})
    write_zip(folder / "sizes.zip", {"a/1.png": png_bytes(8), "b/2.png": png_bytes(12)})
    write_zip(folder / "escape.zip", {"../../outside.png": png_bytes()})
    (folder / "broken.zip").write_bytes(b"PK\x03\x04 but nothing else")
    return {
        "bad CSV": (folder / "my_data.csv", "non-numeric value 'oops'"),
        "bad npy": (folder / "weights.npy", "not a valid .npy file"),
        "empty zip": (folder / "empty.zip", "holds no files"),
        "zip without images": (folder / "notes.zip", "contains no .png"),
        "mixed image sizes": (folder / "sizes.zip", "different sizes"),
        "path traversal": (folder / "escape.zip", "leads outside the zip"),
        "not a zip": (folder / "broken.zip", "not a valid zip file"),
    }


@pytest.mark.parametrize(
    "case",
    [
        "bad CSV",
        "bad npy",
        "empty zip",
        "zip without images",
        "mixed image sizes",
        "path traversal",
        "not a zip",
    ],
)
def test_a_bad_upload_is_one_sentence_naming_the_users_file(lab, tmp_path, case):
    path, phrase = _bad_uploads(tmp_path)[case]
    with pytest.raises(AppError) as err:
        train_upload(client(lab), path)
    message = str(err.value)
    one_sentence(message, path.name)
    assert message.startswith(f"{path.name}: ") and phrase in message, message


def test_mixed_sizes_say_what_to_do_in_the_lab(lab, tmp_path):
    path, _ = _bad_uploads(tmp_path)["mixed image sizes"]
    with pytest.raises(AppError, match="a/1.png is 8x8, b/2.png is 12x12") as err:
        train_upload(client(lab), path)
    assert "resize them to one size before uploading" in str(err.value)


def test_several_files_that_are_not_all_images_are_refused_by_name(lab, tmp_path):
    files = [write_table(tmp_path / "table.csv"), write_png(tmp_path / "face.png")]
    with pytest.raises(AppError) as err:
        train_upload(client(lab), files)
    one_sentence(str(err.value), "table.csv")
    assert "face.png" not in str(err.value).split(":")[0]


def test_several_images_are_one_unlabelled_image_folder(lab, tmp_path):
    files = [write_png(tmp_path / f"shot-{i}.png", seed=i) for i in range(6)]
    _status, _plot, _grid, result, run_id = train_upload(client(lab), files)
    assert result["status"] == "completed"
    data = json.loads((lab.root / "runs" / run_id / "run.json").read_text())["data"]
    assert data["name"] == "6 uploaded images" and data["sample_shape"] == [1, 8, 8]
    assert data["has_labels"] is False
    assert sorted(f["name"] for f in data["upload"]["files"]) == [f.name for f in files]
    # One bad image among them is named by the name it was uploaded with.
    (tmp_path / "shot-9.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    with pytest.raises(AppError) as err:
        train_upload(client(lab), [*files, tmp_path / "shot-9.png"])
    one_sentence(str(err.value), "shot-9.png")
    assert "cannot be read as an image" in str(err.value)


def test_a_run_remembers_its_uploaded_file_by_name_and_sha256(lab, tmp_path):
    table = write_table(tmp_path / "my_data.csv")
    _status, _plot, _grid, result, run_id = train_upload(client(lab), table)
    data = json.loads((lab.root / "runs" / run_id / "run.json").read_text())["data"]
    assert data["name"] == "my_data.csv" and data["kind"] == "flat"
    assert data["sample_shape"] == [13] and data["scaling"] == {"method": "none"}  # in [0, 1]
    assert data["upload"]["name"] == "my_data.csv"
    assert data["upload"]["sha256"] == hashlib.sha256(table.read_bytes()).hexdigest()


# -- reopening and continuing -------------------------------------------------------------------


def test_continue_refuses_data_of_another_shape_naming_both(lab, tmp_path):
    c = client(lab)
    run_id = c.predict("autoencoder", "wine", None, SMALL, ONE_EPOCH, api_name="/train")[4]
    with pytest.raises(AppError) as err:
        c.predict(run_id, "digits", None, ONE_EPOCH, api_name="/continue")
    message = str(err.value)
    assert "trained on wine (13 features); the data chosen is digits (1×8×8 images)" in message
    assert "Traceback" not in message and "\n" not in message.strip()
    # An upload of the same shape is accepted, and the server is still there to train it.
    same = write_table(tmp_path / "more.csv")
    more = c.predict(
        run_id, "uploaded file", handle_file(str(same)), ONE_EPOCH, api_name="/continue"
    )
    assert more[3]["status"] == "completed" and more[3]["run_id"] == run_id


def test_continue_refuses_a_series_run_on_a_table(lab):
    c = client(lab)
    params = {"code_size": 4}
    run_id = c.predict(
        "conv1d", "sensors", None, params, ONE_EPOCH, True, 32, 16, api_name="/train"
    )[4]
    with pytest.raises(AppError) as err:
        c.predict(run_id, "wine", None, ONE_EPOCH, api_name="/continue")
    assert (
        "trained on sensors (windows of 3 channels × 32 steps); the data chosen is wine "
        "(13 features)" in str(err.value)
    )
    # Without series settings the run's own cut is used: it continues on its series.
    more = c.predict(run_id, "sensors", None, ONE_EPOCH, api_name="/continue")[3]
    assert more["status"] == "completed"
    # Reopened in another tab, the built-in comes back cut the same way.
    opened = client(lab).predict(run_id, api_name="/open_run")
    assert "sensors" in opened and tuple(opened[-3:]) == (True, 32, 16)


def test_an_uploaded_series_is_recorded_and_reopened_cut_the_same_way(lab, tmp_path):
    steps = np.arange(400)
    series = tmp_path / "plant.csv"
    rows = [f"{t},{np.sin(t / 7):.5f},{np.cos(t / 19):.5f}" for t in steps]
    series.write_text("time,temperature,flow\n" + "\n".join(rows) + "\n")
    c = client(lab)
    _status, _plot, grid, result, run_id = train_upload(
        c, series, "conv1d", {"code_size": 4}, True, 24, 6
    )
    assert result["status"] == "completed"
    assert Image.open(grid).width >= 1000  # drawn along its time axis
    data = json.loads((lab.root / "runs" / run_id / "run.json").read_text())["data"]
    assert data["series"]["window"] == 24 and data["series"]["stride"] == 6
    assert data["series"]["time_column"] == "time" and data["sample_shape"] == [2, 24]
    opened = client(lab).predict(run_id, api_name="/open_run")
    upload, flag, window, stride = opened[-4:]
    assert (flag, window, stride) == (True, 24, 6)
    assert Path(upload[0]).name == "plant.csv"
    assert "Opened" in " ".join(str(o) for o in opened)


def test_a_reopened_run_whose_file_is_gone_asks_for_it_by_name(lab, tmp_path):
    table = write_table(tmp_path / "my_data.csv", seed=3)
    run_id = train_upload(client(lab), table)[4]
    record = json.loads((lab.root / "runs" / run_id / "run.json").read_text())["data"]["upload"]
    kept = Path(record["files"][0]["path"])
    assert kept.is_file() and kept.name == "my_data.csv"  # where gradio keeps the upload
    kept.write_text("f0\n1\n2\n")  # the server's copy changed: it is no longer the same file
    other = client(lab)
    opened = other.predict(run_id, api_name="/open_run")
    status = next(str(o) for o in opened if "Opened" in str(o))
    assert "upload my_data.csv (13 features) to continue this run" in status
    assert "uploaded file" in opened  # the dataset waits for the upload
    with pytest.raises(AppError, match="Choose a file in the upload box"):
        other.predict(run_id, "uploaded file", None, ONE_EPOCH, api_name="/continue")
    # Uploading it again continues the run.
    again = other.predict(
        run_id, "uploaded file", handle_file(str(table)), ONE_EPOCH, api_name="/continue"
    )
    assert again[3]["status"] == "completed"


def test_the_cli_refuses_to_resume_on_data_of_another_shape(tmp_path, capsys):
    assert (
        main(["train", "autoencoder", "--data", "wine", "--epochs", "1", "-o", "code_size", "2"])
        == 0
    )
    run_id = next((tmp_path / "runs").iterdir()).name
    capsys.readouterr()
    assert main(["train", "--resume", run_id, "--data", "digits", "--epochs", "1"]) == 1
    err = capsys.readouterr().err.strip()
    assert err == (
        "error: This run was trained on wine (13 features); the data chosen is digits "
        "(1×8×8 images), so the run cannot continue on it: choose data of the same shape, or "
        "train a new model."
    )


# -- unpacking zips safely (no lab needed) ------------------------------------------------------


def _prepare(path: Path) -> uploads.Prepared:
    area = uploads.UploadArea()
    try:
        return area.prepare([uploads.UploadedFile(str(path), path.name)])
    finally:
        area.cleanup()


@pytest.mark.parametrize(
    "member", ["../evil.png", "/abs/evil.png", "C:/evil.png", "a/../../evil.png", "..\\evil.png"]
)
def test_a_zip_member_outside_the_zip_is_refused_and_nothing_is_written(tmp_path, member):
    path = write_zip(tmp_path / "sneaky.zip", {"ok/1.png": png_bytes(), member: png_bytes()})
    before = set(Path(tempfile.gettempdir()).glob("evil.png"))
    with pytest.raises(DataError, match="sneaky.zip: holds .* leads outside the zip"):
        _prepare(path)
    assert set(Path(tempfile.gettempdir()).glob("evil.png")) == before
    assert not (tmp_path / "evil.png").exists()


def test_a_zip_bomb_is_one_sentence(tmp_path, monkeypatch):
    monkeypatch.setenv("AELAB_MAX_DATA_MB", "1")
    path = write_zip(tmp_path / "bomb.zip", {"x.npy": b"\0" * (3 << 20)})
    assert path.stat().st_size < 50_000  # it is small only until it is unpacked
    with pytest.raises(DataError) as err:
        _prepare(path)
    assert str(err.value) == (
        "bomb.zip: unpacks to more than the 1 MB the lab reads (set by AELAB_MAX_DATA_MB), so "
        "it was not unpacked; upload less data."
    )


def test_a_zip_lying_about_its_sizes_is_stopped_while_unpacking(tmp_path, monkeypatch):
    monkeypatch.setenv("AELAB_MAX_DATA_MB", "1")
    path = write_zip(
        tmp_path / "liar.zip", {"a.bin": b"\0" * (700 << 10), "b.bin": b"\0" * (700 << 10)}
    )
    # Rewrite both declared sizes in the central directory (and local headers) to 1 byte.
    raw = bytearray(path.read_bytes())
    for signature, offset in ((b"PK\x01\x02", 24), (b"PK\x03\x04", 22)):
        start = 0
        while (start := raw.find(signature, start)) != -1:
            raw[start + offset : start + offset + 4] = (1).to_bytes(4, "little")
            start += 4
    path.write_bytes(bytes(raw))
    with pytest.raises(DataError) as err:
        _prepare(path)
    assert str(err.value).startswith("liar.zip: ") and "\n" not in str(err.value)


def test_too_many_zip_members_are_refused_before_unpacking(tmp_path, monkeypatch):
    monkeypatch.setattr(uploads, "MAX_MEMBERS", 5)
    path = write_zip(tmp_path / "many.zip", {f"c/{i}.png": png_bytes(seed=i) for i in range(6)})
    with pytest.raises(DataError, match=r"many.zip: holds 6 entries, more than the 5 the lab"):
        _prepare(path)


def test_links_and_encrypted_members_are_refused(tmp_path):
    path = tmp_path / "link.zip"
    with zipfile.ZipFile(path, "w") as zf:
        info = zipfile.ZipInfo("c/escape.png")
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(info, "/etc/passwd")
    with pytest.raises(DataError, match="link.zip: holds 'c/escape.png', a symbolic link"):
        _prepare(path)


def test_the_session_folder_holds_one_upload_and_is_removed_with_the_session(tmp_path):
    first = write_zip(tmp_path / "one.zip", {"a/1.png": png_bytes(), "b/2.png": png_bytes(seed=1)})
    second = write_zip(tmp_path / "two.zip", {"x/1.png": png_bytes(seed=2)})
    area = uploads.UploadArea()
    prepared = area.prepare([uploads.UploadedFile(str(first), "one.zip")])
    folder = area.path
    assert folder is not None and prepared.target.is_relative_to(folder)
    assert sorted(p.name for p in prepared.target.iterdir()) == ["a", "b"]
    area.prepare([uploads.UploadedFile(str(second), "two.zip")])
    assert not folder.exists() and area.path is not None  # the first upload's files are gone
    latest = area.path
    from aelab.ui.session import LabSession, close_session

    session = LabSession(upload_area=area)
    close_session(session)  # what gradio calls when the tab goes
    assert not latest.exists() and area.path is None


def test_folders_left_by_a_killed_server_are_removed(tmp_path, monkeypatch):
    import subprocess
    import sys

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setattr(uploads, "_root", None)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])  # a server that has ended
    dead.wait()
    stale = tmp_path / f"aelab-uploads-{dead.pid}" / "session-x" / "zip"
    stale.mkdir(parents=True)
    unrelated = tmp_path / "aelab-uploads-notes"
    unrelated.mkdir()
    area = uploads.UploadArea()
    folder = area.folder("zip")
    assert folder.parent.parent == tmp_path / f"aelab-uploads-{os.getpid()}"
    assert not stale.parent.parent.exists() and unrelated.exists()
    area.cleanup()
    assert not folder.exists()


def test_importing_the_lab_writes_no_stub_into_the_package():
    import subprocess
    import sys

    import aelab.ui

    folder = Path(aelab.ui.__file__).parent
    for stub in folder.glob("*.pyi"):
        stub.unlink()
    code = "import aelab.ui.app, aelab.ui.session"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
    assert sorted(p.name for p in folder.glob("*.pyi")) == []
