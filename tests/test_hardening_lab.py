"""Hardening of the lab's Export tab (issue 12): its download zip lives inside the export folder
(nothing piles up in a temporary folder), and an earlier export is replaced only when the user
ticks "Replace the existing export", as the CLI asks for --force."""

from __future__ import annotations

import glob
import os
import tempfile
import types
import zipfile
from pathlib import Path

import pytest

pytest.importorskip("gradio_client")
from gradio_client.exceptions import AppError  # noqa: E402
from labapi import client, train  # noqa: E402

from aelab import runtime  # noqa: E402
from aelab.errors import AelabError  # noqa: E402
from aelab.ui import exporting  # noqa: E402

GRAPHS = {"autoencoder.onnx", "encoder.onnx", "decoder.onnx", "manifest.json"}


@pytest.fixture(scope="module")
def trained(lab):
    """One run trained in the lab (2 epochs on digits), shared by this module's tests."""
    run_id = train(client(lab))[4]
    return run_id, lab.root / "exports" / run_id


def _leftovers() -> set[str]:
    """The lab's old download folders in the temporary folder (the server inherits it)."""
    return set(glob.glob(os.path.join(tempfile.gettempdir(), "aelab-export-*")))


def _export(lab, run_id: str, *replace: bool):
    return client(lab).predict(run_id, *replace, api_name="/export")


def test_the_export_zip_lives_in_the_export_folder(lab, trained):
    run_id, folder = trained
    before = _leftovers()
    _report, files = _export(lab, run_id)
    archive = folder / f"{run_id}.zip"
    assert archive.is_file() and _leftovers() == before
    with zipfile.ZipFile(archive) as zf:
        assert set(zf.namelist()) == GRAPHS
        for name in GRAPHS:
            assert zf.read(name) == (folder / name).read_bytes()
    downloaded = next(Path(f) for f in files if f.endswith(".zip"))
    assert downloaded.read_bytes() == archive.read_bytes()
    assert not list(folder.glob(".*"))  # no temporary zip left behind
    assert runtime.load(folder).graphs == ["autoencoder", "encoder", "decoder"]


def test_an_earlier_export_is_not_replaced_unasked(lab, trained):
    run_id, folder = trained
    if not folder.is_dir():
        _export(lab, run_id)
    inode, manifest = folder.stat().st_ino, (folder / "manifest.json").read_bytes()
    with pytest.raises(AppError) as err:
        _export(lab, run_id)
    message = str(err.value)
    assert f"Run '{run_id}' was already exported to" in message
    assert "tick 'Replace the existing export'" in message and "Traceback" not in message
    assert folder.stat().st_ino == inode and (folder / "manifest.json").read_bytes() == manifest


def test_an_earlier_export_is_replaced_when_confirmed(lab, trained, monkeypatch):
    """Called as the Export tab calls it (with the lab's exports folder): ticked, the export is
    written anew, atomically, with a fresh zip."""
    run_id, folder = trained
    if not folder.is_dir():
        _export(lab, run_id)
    monkeypatch.setenv("AELAB_RUNS_DIR", str(lab.root / "runs"))
    monkeypatch.setenv("AELAB_EXPORTS_DIR", str(lab.root / "exports"))
    session = types.SimpleNamespace(run_id=run_id, training=False, export_folder=None)
    inode = folder.stat().st_ino
    with pytest.raises(AelabError, match="already exported"):
        exporting.export(session, "", False)
    assert folder.stat().st_ino == inode
    with pytest.raises(AelabError, match="must be ticked or not"):
        exporting.export(session, "", "yes")
    report, files = exporting.export(session, "", True)
    assert folder.stat().st_ino != inode and "**Exported**" in report
    assert Path(files[0]) == folder / f"{run_id}.zip" and session.export_folder == str(folder)
    assert runtime.load(folder).graphs == ["autoencoder", "encoder", "decoder"]


def test_the_export_endpoint_takes_the_replace_confirmation(lab, trained):
    """The Export tab passes its 'Replace the existing export' checkbox to /export (wired in
    aelab/ui/app.py with exporting.replace_checkbox())."""
    run_id, folder = trained
    if not folder.is_dir():
        _export(lab, run_id)
    inode = folder.stat().st_ino
    info = client(lab).view_api(return_format="dict", print_info=False)
    params = info["named_endpoints"]["/export"]["parameters"]
    assert len(params) == 2, "app.py does not pass the 'Replace the existing export' checkbox"
    with pytest.raises(AppError, match="already exported"):
        _export(lab, run_id, False)
    _report, files = _export(lab, run_id, True)
    assert folder.stat().st_ino != inode
    assert any(f.endswith(f"{run_id}.zip") for f in files)
