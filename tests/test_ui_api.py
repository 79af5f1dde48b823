"""The lab's named endpoints, driven by gradio_client against the real launch.py subprocess."""

from __future__ import annotations

import json
import math
import os
import re
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("gradio_client")
from gradio_client import handle_file  # noqa: E402
from gradio_client.exceptions import AppError  # noqa: E402
from labapi import SMALL, client, train, wait_for  # noqa: E402

from aelab.plugins import get_model, get_models  # noqa: E402
from aelab.runs import load_run  # noqa: E402
from aelab.ui.devserver import LabServer  # noqa: E402


def test_every_action_is_a_named_endpoint(lab):
    names = set(client(lab).view_api(print_info=False, return_format="dict")["named_endpoints"])
    expected = {
        "/train",
        "/continue",
        "/stop",
        "/latent",
        "/interpolate",
        "/samples",
        "/compare_pca",
        "/export",
        "/check",
        "/runs",
        "/open_run",
        "/compare",
    }
    from aelab.plugins import get_applications

    # Each application with a panel is an endpoint named by its id.
    expected |= {f"/{a.id}" for a in get_applications().values() if a.panel}
    assert expected <= names
    assert not any("setter" in n or "lambda" in n for n in names)  # internal events stay private


def test_train_inspect_export_and_check(lab, tmp_path):
    c = client(lab)
    status, _plot, grid, result, run_id = train(c)
    assert result["status"] == "completed" and result["epochs_done"] == 2
    assert all(math.isfinite(v) for v in result["val_losses"].values())
    assert run_id == result["run_id"] and "Finished" in status
    assert (lab.root / "runs" / run_id / "run.json").is_file()
    assert Path(grid).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    plot, caption = c.predict("auto", api_name="/latent")
    assert len(plot["data"]) == 359  # digits' 20 % held out
    assert {row[2] for row in plot["data"]} == {str(d) for d in range(10)}
    assert "plotted directly" in caption  # code size 2: no projection needed

    strip, caption = c.predict(0, 1, 6, api_name="/interpolate")
    assert Path(strip).is_file() and "6 images decoded" in caption
    _img, caption = c.predict(api_name="/compare_pca")
    assert "PCA" in caption and "test MSE" in caption

    report, files = c.predict("", api_name="/export")
    names = sorted(Path(f).name for f in files)
    assert {"autoencoder.onnx", "encoder.onnx", "decoder.onnx", "manifest.json"} <= set(names)
    assert any(n.endswith(".zip") for n in names) and "max abs diff" in report
    manifest = json.loads(next(Path(f) for f in files if f.endswith("manifest.json")).read_text())
    assert manifest["model"] == "autoencoder"

    sample = np.random.default_rng(0).random((1, 1, 8, 8)).astype(np.float32)
    np.save(tmp_path / "one.npy", sample)
    _img, line = c.predict(handle_file(str(tmp_path / "one.npy")), api_name="/check")
    assert "onnxruntime ran the `autoencoder` graph on 1 input(s)" in line
    diff = re.search(r"torch model is ([0-9.e+-]+)\. Rows", line)
    assert diff and float(diff.group(1)) < 1e-4  # the exported graph agrees with torch


def test_bad_settings_are_one_sentence_and_the_server_lives_on(lab):
    c = client(lab)
    with pytest.raises(AppError) as err:
        train(c, params={"code_size": 64, "layers": 1, "nodes": 32})
    assert "code of 64 units is not smaller" in str(err.value)
    assert "Traceback" not in str(err.value)
    with pytest.raises(AppError, match="Nodes per layer"):
        train(c, params={**SMALL, "nodes": "[32, oops]"})
    with pytest.raises(AppError, match="no trained model"):
        client(lab).predict("auto", api_name="/latent")
    assert train(c, epochs=1)[3]["status"] == "completed"  # still serving


def test_stop_ends_training_early_and_keeps_the_run(lab):
    c = client(lab)
    job = c.submit(
        "autoencoder", "digits", None, SMALL, {"epochs": 500, "seed": 0}, api_name="/train"
    )
    wait_for(lambda: len(job.outputs()) > 0, 120, "training to start")
    assert "Nothing is training" not in c.predict(api_name="/stop")
    result = job.result(timeout=120)[3]
    assert result["status"] == "stopped" and result["epochs_done"] < 500
    saved = load_run(lab.root / "runs" / result["run_id"])
    assert saved.status == "stopped" and len(saved.history) == result["epochs_done"]
    # The stopped run reopens in another session and continues from where it stopped.
    other = client(lab)
    opened = other.predict(result["run_id"], api_name="/open_run")
    assert "Opened" in " ".join(str(o) for o in opened)
    more = other.predict(
        result["run_id"], "digits", None, {"epochs": 1, "seed": 0}, api_name="/continue"
    )[3]
    assert more["status"] == "completed" and more["run_id"] == result["run_id"]


def test_two_sessions_train_different_models_at_once(lab):
    a, b = client(lab), client(lab)
    jobs = {
        "autoencoder": a.submit(
            "autoencoder", "digits", None, SMALL, {"epochs": 4, "seed": 0}, api_name="/train"
        ),
        "denoising": b.submit(
            "denoising", "digits", None, SMALL, {"epochs": 4, "seed": 1}, api_name="/train"
        ),
    }
    first_output: dict[str, float] = {}
    finished: dict[str, float] = {}

    def progress() -> bool:
        now = time.monotonic()
        for name, job in jobs.items():
            if name not in first_output and job.outputs():
                first_output[name] = now
            if name not in finished and job.done():
                finished[name] = now
        return len(finished) == 2

    wait_for(progress, 240, "both trainings to finish")
    results = {name: job.result()[3] for name, job in jobs.items()}
    assert {r["status"] for r in results.values()} == {"completed"}
    assert results["autoencoder"]["run_id"].startswith("autoencoder-")
    assert results["denoising"]["run_id"].startswith("denoising-")
    # Each started streaming before the other finished: neither waited in a queue for the other.
    assert first_output["denoising"] < finished["autoencoder"]
    assert first_output["autoencoder"] < finished["denoising"]


def test_two_tabs_at_one_seed_reproduce_one_tab(lab):
    """Two trainings at seed 0 running at once end where one alone ends (no shared RNG)."""
    params = {**SMALL, "noise": 0.3}
    config = {"epochs": 3, "seed": 0}
    alone = client(lab).predict("denoising", "digits", None, params, config, api_name="/train")[3][
        "val_losses"
    ]["total"]
    a, b = client(lab), client(lab)
    jobs = [
        c.submit("denoising", "digits", None, params, config, api_name="/train") for c in (a, b)
    ]
    both = [job.result(timeout=240)[3]["val_losses"]["total"] for job in jobs]
    assert both == [alone, alone]


@pytest.mark.parametrize("endpoint", ["/open_run", "/export"])
@pytest.mark.parametrize("bad", ["../runs/x", "/etc", "x\n", ".."])
def test_run_endpoints_take_ids_never_paths(lab, endpoint, bad):
    with pytest.raises(AppError, match="is not allowed because"):
        client(lab).predict(bad, api_name=endpoint)


def test_continue_takes_ids_never_paths(lab):
    with pytest.raises(AppError, match="is not allowed because"):
        client(lab).predict("../elsewhere", "digits", None, {"epochs": 1}, api_name="/continue")


@pytest.mark.parametrize("model_id", sorted(get_models()))
def test_every_registered_model_trains_and_exports_from_the_lab(lab, model_id):
    c = client(lab)
    # Each on data of a kind it accepts: a sequence model on the built-in sensor series.
    data = "digits" if "image" in get_model(model_id).accepts else "sensors"
    result = c.predict(model_id, data, None, {}, {"epochs": 1, "seed": 0}, api_name="/train")[3]
    assert result["status"] == "completed", result["message"]
    assert result["run_id"].startswith(f"{model_id}-")
    if "sample" in get_model(model_id).capabilities:
        image, caption = c.predict(8, 0, api_name="/samples")
        assert Path(image).is_file() and "8 new samples" in caption
    report, files = c.predict("", api_name="/export")
    assert any(f.endswith(".onnx") for f in files) and "max abs diff" in report


def test_an_uploaded_file_trains_and_a_bad_one_is_a_message(lab, tmp_path):
    rng = np.random.default_rng(0)
    np.save(tmp_path / "points.npy", rng.random((60, 5)).astype(np.float32))
    (tmp_path / "notes.txt").write_text("not data")
    c = client(lab)
    params = {"code_size": 2, "layers": 1, "nodes": 8}
    upload = handle_file(str(tmp_path / "points.npy"))
    result = c.predict(
        "autoencoder", "uploaded file", upload, params, {"epochs": 2}, api_name="/train"
    )[3]
    assert result["status"] == "completed" and result["epochs_done"] == 2
    with pytest.raises(AppError, match="unsupported file type"):
        c.predict(
            "autoencoder",
            "uploaded file",
            handle_file(str(tmp_path / "notes.txt")),
            params,
            {"epochs": 1},
            api_name="/train",
        )
    with pytest.raises(AppError, match="upload box"):
        c.predict("autoencoder", "uploaded file", None, params, {"epochs": 1}, api_name="/train")


def test_launch_options_default_to_this_machine_only(monkeypatch):
    import argparse

    from aelab.errors import AelabError
    from aelab.ui.launcher import add_arguments, host_from, port_from

    parse = add_arguments(argparse.ArgumentParser()).parse_args
    for var in ("AELAB_PORT", "GRADIO_SERVER_PORT", "GRADIO_SERVER_NAME"):
        monkeypatch.delenv(var, raising=False)
    args = parse([])
    assert (host_from(args), args.share, port_from(args)) == ("127.0.0.1", False, 7860)
    monkeypatch.setenv("AELAB_PORT", "8123")
    assert port_from(parse([])) == 8123 and port_from(parse(["--port", "9000"])) == 9000
    monkeypatch.setenv("AELAB_PORT", "eighty")
    with pytest.raises(AelabError, match="AELAB_PORT"):
        port_from(parse([]))


def test_uploads_over_the_limit_are_refused(tmp_path):
    import httpx

    root = tmp_path / "limited"
    env = {"AELAB_RUNS_DIR": str(root / "runs"), "AELAB_EXPORTS_DIR": str(root / "exports")}
    with LabServer(env, args=["--max-upload-mb", "0.05"]) as server:
        url = server.url + "gradio_api/upload"
        small, big = b"x" * 10_000, b"x" * 200_000  # 10 kB and 200 kB against a 50 kB limit
        ok = httpx.post(url, files={"files": ("small.csv", small)}, timeout=30)
        refused = httpx.post(url, files={"files": ("big.csv", big)}, timeout=30)
        assert ok.status_code == 200
        assert refused.status_code == 413 and "maximum allowed size" in refused.text
        assert httpx.get(server.url, timeout=30).status_code == 200  # still serving


@pytest.mark.parametrize("case", ["port taken", "bad upload limit"])
def test_start_up_errors_are_one_line(case, tmp_path):
    import os
    import socket
    import subprocess
    import sys

    from aelab.ui.devserver import ROOT

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = str(busy.getsockname()[1])
        extra = ["--max-upload-mb", "0"] if case == "bad upload limit" else []
        proc = subprocess.run(
            [sys.executable, str(ROOT / "launch.py"), "--no-browser", "--port", port, *extra],
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, "AELAB_RUNS_DIR": str(tmp_path)},
        )
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    (line,) = proc.stderr.strip().splitlines()
    expected = (
        "--max-upload-mb must be a positive" if extra else f"Cannot serve on 127.0.0.1:{port}"
    )
    assert line.startswith("error: ") and expected in line


def test_the_lab_says_which_plugins_were_refused(fresh_plugins, tmp_path):
    """A drop-in plugin that takes a built-in's id is refused, and the page says so."""
    from aelab.ui.app import build_app

    (tmp_path / "copycat.py").write_text(
        "from aelab.hookspecs import hookimpl\n"
        "from aelab_plugins.autoencoder import SPEC\n"
        "import dataclasses\n\n"
        "@hookimpl\n"
        "def register_models(register):\n"
        "    register(dataclasses.replace(SPEC))\n",
        encoding="utf-8",
    )
    fresh_plugins.set_plugins_dir(tmp_path)
    demo = build_app()
    notes = [b for b in demo.blocks.values() if getattr(b, "elem_id", None) == "plugin-warnings"]
    assert len(notes) == 1 and notes[0].visible
    assert "copycat" in notes[0].value and "autoencoder" in notes[0].value
    assert get_model("autoencoder").plugin != "copycat"  # the built-in kept its id


def test_the_page_runs_several_of_an_event_at_once(monkeypatch):
    """The queue's default concurrency is set when the Blocks is created (gradio reads
    GRADIO_DEFAULT_CONCURRENCY_LIMIT then), not by a later demo.queue() that would build the
    server app once more: this pins that gradio still reads it there, that the lab runs several
    of an event at once unless the user's variable says otherwise, and that nothing is left set."""
    from aelab.ui.app import DEFAULT_CONCURRENCY, build_app

    monkeypatch.delenv("GRADIO_DEFAULT_CONCURRENCY_LIMIT", raising=False)
    demo = build_app()
    assert demo._queue.default_concurrency_limit == DEFAULT_CONCURRENCY > 1
    assert "GRADIO_DEFAULT_CONCURRENCY_LIMIT" not in os.environ
    monkeypatch.setenv("GRADIO_DEFAULT_CONCURRENCY_LIMIT", "2")
    assert build_app()._queue.default_concurrency_limit == 2
    assert os.environ["GRADIO_DEFAULT_CONCURRENCY_LIMIT"] == "2"


def test_application_panels_are_endpoints_that_serve_or_say_why(lab):
    c = client(lab)
    train(c, "vae", {"code_size": 4}, epochs=1)
    img, caption = c.predict(8, 0, "", api_name="/sample")
    assert Path(img).is_file() and "8 new samples" in caption
    other = client(lab)
    train(other, "autoencoder", epochs=1)
    with pytest.raises(AppError, match="needs a model that can sample"):
        other.predict(8, 0, "", api_name="/sample")


def test_the_anomaly_panel_scores_and_measures_against_labels(lab):
    c = client(lab)
    train(c, "autoencoder", {"code_size": 4}, epochs=3)
    hist, roc, grid, caption, result = c.predict(
        "auto", "contamination", 0.1, "0, 1, 2, 3, 4", "held-out part", api_name="/anomaly"
    )
    assert result["n"] == 359 and result["n_flagged"] == 36 and 0.0 <= result["auroc"] <= 1.0
    assert "AUROC" in caption and Path(grid).is_file()
    assert sum(row[1] for row in hist["data"]) == 359  # every scored sample is in one bin
    assert {row[2] for row in hist["data"]} == {"below the threshold", "flagged"}
    with pytest.raises(AppError, match="whole numbers separated by commas"):
        c.predict("auto", "contamination", 0.05, "three", "held-out part", api_name="/anomaly")


def test_the_encode_panel_shows_the_codes(lab):
    c = client(lab)
    train(c, "autoencoder", {"code_size": 3, "layers": 1, "nodes": 32}, epochs=1)
    table, caption = c.predict("held-out part", api_name="/encode")
    assert table["headers"] == ["z0", "z1", "z2", "label"] and len(table["data"]) == 20
    assert "359 samples → 3 numbers each" in caption


def test_the_denoise_panel_compares_noisy_blur_and_denoised(lab):
    c = client(lab)
    train(c, "denoising", {"code_size": 16, "layers": 1, "nodes": 64, "noise": 0.3}, epochs=5)
    img, table, caption = c.predict("gaussian", 0.3, 0.3, 0, api_name="/denoise")
    assert Path(img).is_file() and "PSNR" in caption and "SSIM" in caption
    assert "8 held-out samples" in caption
    with pytest.raises(AppError, match="'seed' must be greater than or equal to 0"):
        c.predict("mask", 0.3, 0.3, -1, api_name="/denoise")


def test_the_encode_panel_sweeps_code_sizes_against_pca(lab):
    c = client(lab)
    train(c, "autoencoder", {"code_size": 3, "layers": 1, "nodes": 32}, epochs=1)
    plot, caption = c.predict("2, 4", 1, api_name="/encode_sweep")
    series = {(row[0], row[2]) for row in plot["data"]}
    assert series == {(2, "model"), (2, "PCA"), (4, "model"), (4, "PCA")}
    assert "against PCA" in caption and "--sweep 2,4 --epochs 1" in caption
    with pytest.raises(AppError, match="whole numbers separated by commas"):
        c.predict("2, x", 1, api_name="/encode_sweep")


def test_loss_terms_of_different_scales_get_their_own_panel_and_fixed_colours():
    from aelab.ui import curves

    rows = [
        {"epoch": e, "loss": v, "series": f"{term} · {split}"}
        for e in (1.0, 2.0)
        for term, v in (("reconstruction", 30.0 - e), ("kl", 2.0 + e), ("total", 32.0))
        for split in ("train", "validation")
    ]
    main, small = curves.split_terms(rows)
    assert main == ["reconstruction", "total"] and small == ["kl"]
    colours = curves.colour_map(rows)
    # The same term keeps its colour whatever order the rows come in (live or reopened).
    assert curves.colour_map(rows[:6]) == {k: colours[k] for k in curves.colour_map(rows[:6])}
    assert colours["kl · train"] != colours["kl · validation"]
    assert len({colours[f"{t} · train"] for t in ("reconstruction", "kl", "total")}) == 3
    one_scale = [r for r in rows if not r["series"].startswith("kl")]
    assert curves.split_terms(one_scale)[1] == []


def test_the_page_warns_of_a_collapsed_vae_and_shows_a_gans_own_rates(lab):
    c = client(lab)
    params = {"code_size": 4, "free_bits": 0.0, "beta": 50.0}
    status, *_ = c.predict("vae", "digits", None, params, {"epochs": 2}, api_name="/train")
    assert "Posterior collapse" in status
    status, *_ = train(c, "autoencoder", epochs=1)
    assert "collapse" not in status
    from aelab.ui.views import architecture

    _data, arch = architecture("gan", "digits", None, {}, {"lr": 0.01})
    assert "learning rates: discriminator 0.001, generator 0.001" in arch
    assert "the training setting 0.01 is not used" in arch
