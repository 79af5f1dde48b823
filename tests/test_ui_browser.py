"""The lab in a real browser: Playwright drives Debian's Chromium against launch.py."""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

import pytest
from browserkit import choose, expect, set_epochs, set_number

from aelab.plugins import get_model  # noqa: E402
from aelab.ui.devserver import LabServer

# Far more epochs than any machine finishes before the test stops it: watching the page update
# mid-training must not depend on how fast the machine is.
EPOCHS = 2000


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    root = tmp_path_factory.mktemp("lab_browser")
    env = {"AELAB_RUNS_DIR": str(root / "runs"), "AELAB_EXPORTS_DIR": str(root / "exports")}
    with LabServer(env, log=root / "server.log") as server:
        yield server


def test_build_train_watch_and_export(page):
    denoising = get_model("denoising")
    choose(page, "model", denoising.name)
    # The controls are rebuilt from the denoising model's schema, with its defaults.
    expect(page.locator("#denoising-corruption")).to_be_visible()
    expect(page.locator("#denoising-noise input[type=number]")).to_have_value("0.3")
    expect(page.get_by_text(denoising.description)).to_be_visible()
    set_number(page, "denoising-code_size", "2")
    arch = page.locator("#architecture")
    expect(arch).to_contain_text("code 2 units")
    expect(arch).to_contain_text("undercomplete")
    set_epochs(page, EPOCHS)

    page.locator("#train").click()
    status = page.locator("#status")
    expect(status).to_contain_text(re.compile(rf"Epoch \d+/{EPOCHS}"))
    grid = page.locator("#grid img")
    expect(grid).to_be_visible()
    first_grid = grid.get_attribute("src")
    first_plot = page.locator("#loss-plot").screenshot()
    first_epoch = int(re.search(r"Epoch (\d+)/", status.inner_text()).group(1))
    # Later updates arrive while it trains: a later epoch, redrawn reconstructions, longer curves.
    page.wait_for_function(
        "([sel, n]) => { const m = document.querySelector(sel).innerText.match(/Epoch (\\d+)\\//);"
        " return m !== null && Number(m[1]) > n; }",
        arg=["#status", first_epoch],
    )
    expect(grid).not_to_have_attribute("src", first_grid)
    expect(page.locator("#loss-plot canvas, #loss-plot svg").first).to_be_visible()
    assert page.locator("#loss-plot").screenshot() != first_plot  # the curves grew
    page.locator("#stop").click()
    expect(status).to_contain_text("Stopped after", timeout=30_000)
    run_id = page.locator("#run-id textarea, #run-id input").first.input_value()
    assert run_id.startswith("denoising-")

    page.get_by_role("tab", name="4 · Export").click()
    page.locator("#export").click()
    expect(page.locator("#export-report")).to_contain_text(f"Exported run {run_id}")
    expect(page.locator("#export-report")).to_contain_text("max abs diff")
    link = page.locator("#export-files a[download$='.zip']").first
    with page.expect_download() as info:
        link.click()
    saved = Path(info.value.path())
    with zipfile.ZipFile(saved) as zf:
        names = set(zf.namelist())
    assert {"autoencoder.onnx", "encoder.onnx", "decoder.onnx", "manifest.json"} <= names


def test_stop_in_the_middle_keeps_the_run(page):
    set_number(page, "autoencoder-code_size", "4")
    expect(page.locator("#architecture")).to_contain_text("code 4 units")
    set_epochs(page, EPOCHS)
    page.locator("#train").click()
    status = page.locator("#status")
    expect(status).to_contain_text(re.compile(rf"Epoch \d+/{EPOCHS}"))
    page.locator("#stop").click()
    expect(page.locator("#stop-note")).to_contain_text("Stop requested")
    expect(status).to_contain_text("Stopped after", timeout=30_000)
    expect(status).to_contain_text("saved")
    done = re.search(r"Stopped after (\d+) epoch", status.inner_text())
    assert done and int(done.group(1)) < EPOCHS


def test_a_bad_value_shows_a_message_not_a_traceback(page):
    nodes = page.locator("#autoencoder-nodes textarea, #autoencoder-nodes input").first
    nodes.fill("[64, lots]")
    nodes.blur()
    expect(page.locator("#architecture")).to_contain_text("Cannot build this model")
    page.locator("#train").click()
    toast = page.get_by_text("must be a whole number or a list of whole numbers")
    expect(toast.first).to_be_visible()
    expect(page.get_by_text("Traceback")).to_have_count(0)
    # The server is still there: fixing the value builds again.
    nodes.fill("64")
    nodes.blur()
    expect(page.locator("#architecture")).to_contain_text("parameters")


def test_a_new_model_clears_the_last_runs_results_and_buttons_say_why(page):
    gan = get_model("gan")
    choose(page, "model", gan.name)
    set_epochs(page, 1)
    page.locator("#train").click()
    expect(page.locator("#status")).to_contain_text("Finished")
    # A GAN samples but has no encoder: its views say so and keep their buttons disabled.
    page.get_by_role("tab", name="3 · Latent space").click()
    expect(page.locator("#map")).to_be_disabled()
    expect(page.locator("#interpolate")).to_be_disabled()
    expect(page.locator("#latent-note")).to_contain_text("a model with an encoder")
    page.locator("#samples").click()
    samples = page.locator("#tab-latent img").first
    expect(samples).to_be_visible()
    # Switching to the autoencoder lets go of the GAN's run: its samples and curves go, and
    # buttons that need a model wait for one, saying why.
    choose(page, "model", get_model("autoencoder").name)
    expect(page.locator("#status")).to_contain_text("Press Train to start")
    expect(page.locator("#tab-latent img")).to_have_count(0)
    expect(page.locator("#run-id textarea, #run-id input").first).to_have_value("")
    expect(page.locator("#samples")).to_be_disabled()
    expect(page.locator("#latent-note")).to_contain_text("Train a model or open a saved run")
    # The autoencoder, once trained, cannot sample: that button stays disabled with the reason.
    set_epochs(page, 1)
    page.locator("#train").click()
    expect(page.locator("#status")).to_contain_text("Finished")
    expect(page.locator("#map")).to_be_enabled()
    expect(page.locator("#samples")).to_be_disabled()
    expect(page.locator("#latent-note")).to_contain_text("a prior to sample from")
    page.get_by_role("tab", name="Generation").click()
    expect(page.locator("#generate")).to_be_disabled()
    expect(page.locator("#tab-app-sample")).to_contain_text("needs a model that can sample")


def test_a_reopened_run_brings_back_its_models_controls_with_its_values(page):
    """Only the chosen model's controls are on the page; opening a run draws its model's,
    set to the run's values, and they edit the settings as before."""
    denoising = get_model("denoising")
    choose(page, "model", denoising.name)
    set_number(page, "denoising-code_size", "3")
    arch = page.locator("#architecture")
    expect(arch).to_contain_text("code 3 units")
    expect(page.locator("#autoencoder-code_size")).to_have_count(0)
    set_epochs(page, 1)
    page.locator("#train").click()
    expect(page.locator("#status")).to_contain_text("Finished")
    run_id = page.locator("#run-id textarea, #run-id input").first.input_value()

    page.reload()  # a new session, on the first model
    expect(page.locator("#autoencoder-code_size")).to_be_visible()
    expect(page.locator("#denoising-code_size")).to_have_count(0)

    def open_run() -> None:
        page.get_by_role("tab", name="5 · Runs").click()
        pick = page.locator("#run-choice input")
        pick.fill(run_id)
        pick.press("Enter")
        page.locator("#open-run").click()
        expect(page.locator("#status")).to_contain_text(f"Opened run {run_id}")

    open_run()
    expect(page.locator("#model input")).to_have_value(denoising.name)
    code = page.locator("#denoising-code_size input[type=number]")
    expect(code).to_have_value("3")
    expect(page.locator("#autoencoder-code_size")).to_have_count(0)
    expect(arch).to_contain_text("code 3 units")
    set_number(page, "denoising-code_size", "5")
    expect(arch).to_contain_text("code 5 units")
    # Opened again, the same model's controls take the run's values back.
    open_run()
    expect(code).to_have_value("3")
    expect(arch).to_contain_text("code 3 units")


def test_a_vaes_small_kl_gets_a_panel_of_its_own(page):
    choose(page, "model", get_model("vae").name)
    set_epochs(page, 2)
    page.locator("#train").click()
    expect(page.locator("#status")).to_contain_text("Finished")
    small = page.locator("#loss-plot-small")
    expect(small).to_be_visible()
    expect(small).to_contain_text("kl")
    # Switching model takes the run's curves away, the second panel with them.
    choose(page, "model", get_model("autoencoder").name)
    expect(small).to_be_hidden()


def test_the_live_picture_says_what_it_shows_for_the_model(page):
    grid = page.locator("#grid")
    expect(grid).to_contain_text("reconstructions")
    choose(page, "model", get_model("gan").name)
    expect(grid).to_contain_text("Real samples (top) and generated ones")
    expect(page.locator("#grid-caption")).to_contain_text("generator makes")
    choose(page, "dataset", "sensors")
    choose(page, "model", get_model("conv1d").name)
    expect(grid).to_contain_text("along its time axis")


def test_ticked_runs_compare_in_one_table_and_chart(lab, page):
    from labapi import client, train

    runs = [train(client(lab), model, epochs=1)[4] for model in ("autoencoder", "denoising")]
    page.get_by_role("tab", name="5 · Runs").click()
    # Nothing ticked yet: one sentence in the page, no traceback.
    page.locator("#compare").click()
    expect(page.get_by_text("Tick at least one saved run").first).to_be_visible()
    expect(page.get_by_text("Traceback")).to_have_count(0)
    page.get_by_role("button", name="Refresh").click()
    picker = page.locator("#compare-runs input")
    for run_id in runs:
        picker.click()
        page.get_by_role("option", name=re.compile(re.escape(run_id))).click()
    page.locator("#compare").click()
    table = page.locator("#compare-table")
    for run_id in runs:
        expect(table).to_contain_text(run_id)
    expect(table).to_contain_text("PSNR dB")
    expect(page.locator("#compare-note")).to_contain_text("Compared 2 runs")
    expect(page.locator("#compare-note")).to_contain_text("Reconstructions decoded from the code")
    expect(page.locator("#compare-plot canvas, #compare-plot svg").first).to_be_visible()
    expect(page.locator("#compare-plot-small")).to_be_hidden()
