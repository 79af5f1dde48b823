"""The Runs tab's comparison (/compare): ticked runs scored the same way `aelab compare` scores
them, in one table with their loss curves on one chart; driven by gradio_client against the
session-wide launch.py subprocess."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("gradio_client")
from gradio_client import handle_file  # noqa: E402
from gradio_client.exceptions import AppError  # noqa: E402
from labapi import SMALL, client, train  # noqa: E402

from aelab.compare import FIGURE_NAMES, compare_rows  # noqa: E402

OWN = "each run's own validation split"


@pytest.fixture(scope="module")
def two_runs(lab):
    """An autoencoder and a denoising autoencoder trained for two epochs through /train."""
    c = client(lab)
    a = train(c, "autoencoder")[4]
    b = train(c, "denoising", {**SMALL, "noise": 0.3})[4]
    return a, b


def _table(table: dict) -> list[dict]:
    return [dict(zip(table["headers"], row)) for row in table["data"]]


def test_compare_is_a_named_endpoint(lab):
    api = client(lab).view_api(print_info=False, return_format="dict")["named_endpoints"]
    assert "/compare" in api


def test_two_runs_side_by_side_with_their_curves_on_one_chart(lab, two_runs):
    a, b = two_runs
    table, note, plot, small = client(lab).predict([a, b], OWN, 0, 1000, api_name="/compare")
    rows = _table(table)
    assert [r["run"] for r in rows] == [a, b]
    assert [r["model"] for r in rows] == ["autoencoder", "denoising"]
    for r in rows:
        assert r["data"] == "digits, validation split" and r["n"] == 359 and r["epochs"] == 2
        mse, psnr = r[FIGURE_NAMES["mse"]], r[FIGURE_NAMES["psnr"]]
        assert math.isfinite(mse) and mse > 0 and math.isfinite(psnr)
        assert psnr == pytest.approx(10 * math.log10(1 / mse), rel=1e-3)
        assert r["val loss"] > 0 and r["samples/s"] > 0
    # The same figures as the Python API's (and so `aelab compare`'s) for the same runs.
    api = compare_rows([lab.root / "runs" / a, lab.root / "runs" / b])
    for r, same in zip(rows, api):
        assert r[FIGURE_NAMES["ssim"]] == pytest.approx(same["figures"]["ssim"], rel=1e-3)
        assert r[FIGURE_NAMES["mse"]] == pytest.approx(same["figures"]["mse"], rel=1e-3)
    # The note says what each column is and how the figures were computed.
    assert "Compared 2 runs" in note and "Reconstructions decoded from the code." in note
    assert f"aelab compare {a} {b}" in note
    # One line per run on the chart, each with its two epochs; no second panel needed.
    series = {(row[2], row[0]) for row in plot["value"]["data"]}
    assert series == {(f"{r} · validation", e) for r in (a, b) for e in (1.0, 2.0)}
    assert small["visible"] is False and small["value"] is None


def test_a_vae_beside_an_autoencoder_on_a_builtin_with_its_nll(lab, two_runs):
    a = two_runs[0]
    vae = train(client(lab), "vae", {"code_size": 2}, epochs=1)[4]
    table, note, plot, small = client(lab).predict([vae, a], "digits", 5, 0, api_name="/compare")
    rows = _table(table)
    assert [r["model"] for r in rows] == ["vae", "autoencoder"]
    assert {r["data"] for r in rows} == {"digits, whole"} and {r["n"] for r in rows} == {1797}
    assert "loss" in table["headers"] and "val loss" not in table["headers"]
    assert math.isfinite(rows[0][FIGURE_NAMES["nll"]]) and rows[1][FIGURE_NAMES["nll"]] == "–"
    assert FIGURE_NAMES["fd"] not in table["headers"]  # 0 samples: not computed
    assert "importance-weighted bound with 5 samples" in note and "only VAEs" in note
    assert "--data digits --nll-samples 5 --fd-samples 0" in note
    # A VAE's summed nats and an autoencoder's MSE: the smaller gets a panel of its own scale.
    assert {row[2] for row in plot["value"]["data"]} == {f"{vae} · validation"}
    assert small["visible"] is True
    assert {row[2] for row in small["value"]["data"]} == {f"{a} · validation"}


def test_a_models_own_metrics_appear_beside_the_figures(lab):
    gan = train(client(lab), "gan", {}, epochs=1)[4]
    table, note, _plot, _small = client(lab).predict([gan], OWN, 0, 200, api_name="/compare")
    (row,) = _table(table)
    assert 0 <= row["d_real"] <= 1 and 0 <= row["d_fake"] <= 1
    assert FIGURE_NAMES["mse"] not in row  # a GAN does not reconstruct
    assert math.isfinite(row[FIGURE_NAMES["fd"]])
    assert "200 generated and 200 real samples" in note
    assert "metrics the `gan` model reports itself" in note


def test_an_uploaded_runs_data_is_read_again_and_its_loss_said(lab, tmp_path):
    # Values of this test's own: the server keeps uploads by content, shared with other tests.
    rng = np.random.default_rng(16)
    np.save(tmp_path / "points.npy", rng.random((60, 5)).astype(np.float32))
    c = client(lab)
    upload = handle_file(str(tmp_path / "points.npy"))
    params = {"code_size": 2, "layers": 1, "nodes": 8}
    run_id = c.predict(
        "autoencoder", "uploaded file", upload, params, {"epochs": 2}, api_name="/train"
    )[4]
    table, *_ = c.predict([run_id], "", 0, 1000, api_name="/compare")  # "": its own data
    (row,) = _table(table)
    assert row["data"] == "points.npy, validation split" and row["n"] == 12
    # The server's copy of the upload is removed: the run's data is gone, and the page says so.
    record = json.loads((lab.root / "runs" / run_id / "run.json").read_text())["data"]["upload"]
    Path(record["files"][0]["path"]).unlink()
    with pytest.raises(AppError) as err:
        c.predict([run_id], OWN, 0, 1000, api_name="/compare")
    text = str(err.value)
    assert f"The data of run {run_id}, points.npy (5 features), is no longer available" in text
    assert "Traceback" not in text and record["files"][0]["path"] not in text


@pytest.mark.parametrize(
    "runs, data, message",
    [
        ([], OWN, "Tick at least one saved run"),
        (["../runs/x"], OWN, "is not allowed because"),
        (["autoencoder-19990101-000000-abcd"], OWN, "No saved run"),
        ("first", "wine", "has samples of shape [13]"),
        ("first", "/etc/passwd", "'/etc/passwd' is not one"),
        ("first", "../runs", "'../runs' is not one"),
    ],
)
def test_what_cannot_be_compared_is_one_sentence(lab, two_runs, runs, data, message):
    ids = [two_runs[0]] if runs == "first" else runs
    with pytest.raises(AppError) as err:
        client(lab).predict(ids, data, 0, 1000, api_name="/compare")
    assert message in str(err.value) and "Traceback" not in str(err.value)
