"""Data in the lab, in a real browser: zips of image folders, reopened runs, uploaded series."""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
from browserkit import choose, expect, set_epochs, set_number
from PIL import Image

from aelab.plugins import get_model  # noqa: E402
from aelab.ui.devserver import LabServer


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    root = tmp_path_factory.mktemp("lab_browser_data")
    env = {"AELAB_RUNS_DIR": str(root / "runs"), "AELAB_EXPORTS_DIR": str(root / "exports")}
    with LabServer(env, log=root / "server.log") as server:
        server.root = root
        yield server


def upload(page, *paths: Path) -> None:
    page.locator("#upload input[type=file]").set_input_files([str(p) for p in paths])


def run_id_of(page) -> str:
    return page.locator("#run-id textarea, #run-id input").first.input_value()


def pets_zip(folder: Path) -> Path:
    """A zip of one folder holding two class folders of 8x8 gray PNGs, as a person zips it."""
    rng = np.random.default_rng(0)
    path = folder / "pets.zip"
    with zipfile.ZipFile(path, "w") as zf:
        for label in ("cats", "dogs"):
            for i in range(12):
                png = folder / f"{label}-{i}.png"
                Image.fromarray(rng.integers(0, 256, (8, 8), dtype=np.uint8)).save(png)
                zf.write(png, f"pets/{label}/{i}.png")
    return path


def test_a_zip_of_class_folders_is_summarised_on_upload_and_trains(page, lab, tmp_path):
    archive = pets_zip(tmp_path)
    summary = page.locator("#data-summary")
    expect(summary).to_contain_text("digits")
    upload(page, archive)
    # Right after the upload, before any Train: the zip's name, its size and its two classes.
    expect(summary).to_contain_text("pets.zip: 24 samples of 1×8×8")
    expect(summary).to_contain_text("2 labelled classes")
    expect(page.locator("#dataset input")).to_have_value("uploaded file")
    set_epochs(page, 1)
    page.locator("#train").click()
    expect(page.locator("#status")).to_contain_text("Finished after 1 epoch")
    run = json.loads((lab.root / "runs" / run_id_of(page) / "run.json").read_text())
    data = run["data"]
    assert data["label_names"] == ["cats", "dogs"] and data["sample_shape"] == [1, 8, 8]
    assert data["upload"]["name"] == "pets.zip"
    assert data["upload"]["sha256"] == hashlib.sha256(archive.read_bytes()).hexdigest()


def test_a_bad_upload_is_said_in_the_summary_at_once_naming_the_file(page, tmp_path):
    bad = tmp_path / "my_data.csv"
    bad.write_text("a,b\n1,2\n3,oops\n")
    upload(page, bad)
    summary = page.locator("#data-summary")
    expect(summary).to_contain_text("my_data.csv: row 3, column 'b' has the non-numeric value")
    assert "/tmp" not in summary.inner_text() and "gradio" not in summary.inner_text()
    expect(page.get_by_text("Traceback")).to_have_count(0)
    # Back to a built-in: the summary follows the dropdown.
    choose(page, "dataset", "wine")
    expect(summary).to_contain_text("wine: 178 samples of 13")


def test_a_reopened_run_has_its_uploaded_data_back_and_continues(page, lab, tmp_path):
    rng = np.random.default_rng(1)
    table = tmp_path / "my_data.csv"
    header = ",".join(f"f{i}" for i in range(13))
    np.savetxt(table, rng.random((60, 13)), delimiter=",", header=header, comments="")
    upload(page, table)
    expect(page.locator("#data-summary")).to_contain_text("my_data.csv: 60 samples of 13")
    set_epochs(page, 1)
    page.locator("#train").click()
    expect(page.locator("#status")).to_contain_text("Finished after 1 epoch")
    run_id = run_id_of(page)

    page.reload()  # a new session: nothing of the old one is left in the page
    expect(page.locator("#architecture")).to_contain_text("parameters")
    expect(page.locator("#data-summary")).to_contain_text("digits")
    page.get_by_role("tab", name="5 · Runs").click()
    pick = page.locator("#run-choice input")
    pick.fill(run_id)
    pick.press("Enter")
    page.locator("#open-run").click()
    expect(page.locator("#status")).to_contain_text(f"Opened run {run_id}")
    # The data is back: the upload box holds the same file, the summary describes it.
    expect(page.locator("#dataset input")).to_have_value("uploaded file")
    expect(page.locator("#upload")).to_contain_text("my_data")
    expect(page.locator("#data-summary")).to_contain_text("my_data.csv: 60 samples of 13")
    set_epochs(page, 1)
    page.locator("#continue").click()
    expect(page.locator("#status")).to_contain_text("Finished after 1 epoch(s) · ")
    expect(page.locator("#status")).to_contain_text(run_id)
    assert run_id_of(page) == run_id
    saved = json.loads((lab.root / "runs" / run_id / "run.json").read_text())
    assert len(saved["history"]) == 2 and saved["data"]["upload"]["name"] == "my_data.csv"


def test_an_uploaded_series_trains_with_conv1d_and_is_drawn_along_time(page, tmp_path):
    steps = np.arange(800)
    rng = np.random.default_rng(2)
    waves = np.stack(
        [np.sin(steps / 9), np.cos(steps / 23), np.sign(np.sin(steps / 40))], axis=1
    ) + 0.05 * rng.standard_normal((800, 3))
    series = tmp_path / "plant.csv"
    lines = ["time,temperature,flow,valve"]
    lines += [f"{t},{a:.5f},{b:.5f},{c:.5f}" for t, (a, b, c) in zip(steps, waves, strict=True)]
    series.write_text("\n".join(lines) + "\n")
    choose(page, "model", get_model("conv1d").name)
    upload(page, series)
    summary = page.locator("#data-summary")
    # Read as a table first (a sample per row); then as a series cut into windows.
    expect(summary).to_contain_text("plant.csv: 800 samples of")
    page.locator("#series input[type=checkbox]").check()
    set_number(page, "series-window", "32")
    set_number(page, "series-stride", "16")
    expect(summary).to_contain_text("plant.csv: 49 samples of 3×32")
    set_epochs(page, 1)
    page.locator("#train").click()
    expect(page.locator("#status")).to_contain_text("Finished after 1 epoch")
    grid = page.locator("#grid img")
    expect(grid).to_be_visible()
    # The whole series along its time axis: one wide chart, not a grid of small windows.
    width = grid.evaluate("img => img.decode().then(() => img.naturalWidth)")
    assert width >= 1000, width
