"""Experiment tracking (issue 15): TensorBoard and MLflow through the callback seam, chosen by
name in the CLI, the Python API and the lab; a plugin adds a tracker the same way."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

from aelab import plugins
from aelab.cli import main
from aelab.data import load_data
from aelab.errors import ParamsError
from aelab.hookspecs import hookimpl
from aelab.plugins import get_model
from aelab.tracking import Tracker, make_trackers, tracker_names
from aelab.train import Trainer

SMALL = {"code_size": 2, "layers": 1, "nodes": 32}
CONFIG = {"epochs": 2, "batch_size": 64, "seed": 0, "val_fraction": 0.25}
DOC = Path(__file__).resolve().parent.parent / "docs" / "plugins.md"


@pytest.fixture(scope="module")
def digits():
    return load_data("digits").subset(range(240))


def _train(digits, tmp_path, names, model="autoencoder", params=SMALL, **options):
    trainer = Trainer(
        get_model(model),
        params,
        digits,
        CONFIG,
        callbacks=make_trackers(names, **options),
        runs_dir=str(tmp_path / "runs"),
    )
    return trainer, trainer.fit()


def _events(folder: Path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    assert list(folder.glob("events.out.tfevents.*")), f"no event file in {folder}"
    acc = EventAccumulator(str(folder), size_guidance={"scalars": 0, "images": 0, "tensors": 0})
    acc.Reload()
    return acc


# -- TensorBoard ---------------------------------------------------------------------------
def test_tensorboard_event_file_has_the_curves_images_and_hyperparameters(digits, tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.plugins.hparams import plugin_data_pb2

    trainer, done = _train(digits, tmp_path, ["tensorboard"])
    assert done.status == "completed"
    acc = _events(Path(done.run_dir) / "tensorboard")  # in the run's own folder
    tags = acc.Tags()
    history = trainer.history
    assert [h["epoch"] for h in history] == [1, 2]
    for tag, key in (("loss", "losses"), ("val_loss", "val_losses"), ("val_metric", "val_metrics")):
        terms = history[0][key]
        assert terms, key
        for term in terms:
            points = acc.Scalars(f"{tag}/{term}")
            assert [p.step for p in points] == [1, 2]
            expected = [h[key][term] for h in history]
            assert [p.value for p in points] == pytest.approx(expected, rel=1e-6)
    assert "samples_per_s" in tags["scalars"]
    assert acc.Scalars("step_loss/total")[-1].step == trainer.global_step  # at the event rate
    images = acc.Images("images/reconstruction")
    assert [i.step for i in images] == [1, 2]
    assert images[0].encoded_image_string[:8] == b"\x89PNG\r\n\x1a\n"
    assert images[0].width > 100 and images[0].height > 50
    # The hyperparameters: HParams in this same run (not a sub-run), and a table as text.
    content = acc.PluginTagToContent("hparams")
    start = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/session_start_info"])
    hparams = start.session_start_info.hparams
    assert hparams["model"].string_value == "autoencoder"
    assert hparams["params.code_size"].number_value == 2
    assert hparams["train.batch_size"].number_value == 64
    experiment = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/experiment"])
    assert {m.name.tag for m in experiment.experiment.metric_infos} == {
        "loss/total",
        "val_loss/total",
    }
    text = acc.Tensors("hyperparameters/text_summary")[0].tensor_proto.string_val[0].decode()
    assert "| params.code_size | 2 |" in text and "| train.lr |" in text
    assert [p.name for p in (Path(done.run_dir) / "tensorboard").iterdir() if p.is_dir()] == []


def test_tensorboard_logs_samples_of_a_generator_into_log_dir(digits, tmp_path):
    pytest.importorskip("tensorboard")
    _, done = _train(
        digits, tmp_path, "tensorboard", model="gan", params={}, log_dir=tmp_path / "tb"
    )
    acc = _events(tmp_path / "tb" / done.run_id)
    assert "images/reconstruction" not in acc.Tags()["images"]  # a GAN cannot reconstruct
    assert [i.step for i in acc.Images("images/samples")] == [1, 2]
    assert not (Path(done.run_dir) / "tensorboard").exists()


# -- MLflow --------------------------------------------------------------------------------
def test_mlflow_run_has_params_metrics_and_the_run_folder(digits, tmp_path, monkeypatch):
    pytest.importorskip(
        "mlflow", reason="mlflow-skinny is not installed (pip install 'aelab[mlflow]')"
    )
    from mlflow.tracking import MlflowClient

    uri = (tmp_path / "mlruns").as_uri()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # restored after the test
    trainer, done = _train(digits, tmp_path, ["mlflow"], experiment="digits-test")
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("digits-test")
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.run_name == done.run_id and run.info.status == "FINISHED"
    assert run.data.tags["aelab.run_id"] == done.run_id
    assert run.data.tags["aelab.status"] == "completed"
    params = run.data.params
    assert params["model"] == "autoencoder" and params["params.code_size"] == "2"
    assert params["train.epochs"] == "2" and params["params.nodes"] == "32"
    for name, key, term in (
        ("loss/total", "losses", "total"),
        ("val_loss/total", "val_losses", "total"),
        ("val_metric/psnr", "val_metrics", "psnr"),
    ):
        points = client.get_metric_history(run.info.run_id, name)
        assert [p.step for p in points] == [1, 2]
        assert [p.value for p in points] == pytest.approx([h[key][term] for h in trainer.history])
    logged = {a.path for a in client.list_artifacts(run.info.run_id, done.run_id)}
    on_disk = {
        f"{done.run_id}/{p.name}"
        for p in Path(done.run_dir).iterdir()
        if not p.name.startswith(".")
    }
    assert logged == on_disk and f"{done.run_id}/run.json" in logged


def test_mlflow_default_store_is_one_mlflow_skinny_can_write(tmp_path, monkeypatch):
    mlflow = pytest.importorskip("mlflow")
    from aelab.tracking.mlflow import tracking_uri

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)
    assert tracking_uri("file:///elsewhere") == "file:///elsewhere"
    if mlflow.tracking.is_tracking_uri_set():
        pytest.skip("this process set an MLflow tracking URI")
    uri = tracking_uri()
    import importlib.util

    if importlib.util.find_spec("sqlalchemy") is None:
        assert uri == (tmp_path / "mlruns").as_uri()
    else:
        assert uri == mlflow.get_tracking_uri()  # MLflow's own default


# -- choosing trackers ---------------------------------------------------------------------
def test_builtin_trackers_are_registered_without_importing_them():
    import subprocess

    code = (
        "import sys, aelab.tracking as t; names = t.tracker_names(); "
        "print(names, [m for m in ('tensorboard', 'mlflow') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "['tensorboard', 'mlflow'] []", out.stderr


def test_unknown_tracker_is_one_sentence(capsys):
    with pytest.raises(ParamsError, match=r"^Unknown tracker 'nope'; the registered trackers are: tensorboard, mlflow\.$"):  # fmt: skip
        make_trackers(["tensorboard", "nope"])
    assert main(["train", "autoencoder", "--log", "tensorboard,nope", "--epochs", "1"]) == 1
    err = capsys.readouterr().err
    assert err == (
        "error: Unknown tracker 'nope'; the registered trackers are: tensorboard, mlflow.\n"
    )


@pytest.mark.parametrize(
    "name, module, sentence",
    [
        (
            "tensorboard",
            "tensorboard",
            "TensorBoard logging needs the tensorboard package: pip install 'aelab[tensorboard]'.",
        ),
        (
            "mlflow",
            "mlflow",
            "MLflow logging needs the mlflow package: pip install 'aelab[mlflow]'.",
        ),
    ],
)
def test_missing_extra_is_one_sentence(name, module, sentence, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, module, None)  # importing it now fails
    with pytest.raises(ParamsError) as caught:
        make_trackers([name])
    assert str(caught.value) == sentence
    assert main(["train", "autoencoder", "--epochs", "1", "--log", name]) == 1
    assert capsys.readouterr().err == f"error: {sentence}\n"


def test_options_go_to_the_trackers_that_take_them():
    with pytest.raises(ParamsError, match="No tracker among mlflow takes the option 'log_dir'"):
        make_trackers(["mlflow"], log_dir="tb")
    (tb,) = make_trackers("tensorboard", log_dir="tb", steps=False)
    assert tb.log_dir == "tb" and tb.steps is False
    assert make_trackers([]) == [] and make_trackers(None) == []


def test_cli_log_tensorboard_writes_the_event_file(tmp_path, capsys):
    pytest.importorskip("tensorboard")
    args = ["train", "autoencoder", "-o", "code_size", "2", "--epochs", "1", "--json"]
    assert main([*args, "--batch-size", "256", "--log", "tensorboard"]) == 0
    done = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    acc = _events(Path(done["run_dir"]) / "tensorboard")
    assert acc.Scalars("loss/total")[0].value == pytest.approx(done["losses"]["total"], rel=1e-6)
    assert acc.Scalars("val_loss/total")[0].value == pytest.approx(
        done["val_losses"]["total"], rel=1e-6
    )
    # --log-dir moves the event files out of the run's folder
    assert main([*args, "--log", "tensorboard", "--log-dir", str(tmp_path / "tb")]) == 0
    done = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert list((tmp_path / "tb" / done["run"]).glob("events.out.tfevents.*"))


# -- a plugin's tracker --------------------------------------------------------------------
class _Recorder:
    """A third-party tracker: records what it is told."""

    seen: list[str] = []

    def __init__(self, tag: str = ""):
        self.tag = tag

    def on_start(self, trainer, event):
        self.seen.append(f"start{self.tag}")

    def on_step(self, trainer, event):
        if "step" not in self.seen:
            self.seen.append("step")

    def on_epoch(self, trainer, event):
        self.seen.append(f"epoch {event.epoch} {event.losses['total']:.6f}")

    def on_end(self, trainer, event):
        self.seen.append(f"end {event.status}")

    def close(self, trainer):
        self.seen.append("close")


class _RecorderPlugin:
    @hookimpl
    def register_trackers(self, register):
        register(Tracker("recorder", "records every event it gets", _Recorder))
        register(Tracker("mlflow", "a second tracker of a taken name", _Recorder))
        register(Tracker("Bad Name", "", "not callable"))


def test_a_plugins_tracker_is_a_choice_of_log_and_gets_every_event(fresh_plugins, capsys):
    plugins.load_plugins()
    plugins.pm.register(_RecorderPlugin(), name="recorder")
    plugins.invalidate()
    _Recorder.seen = []
    assert tracker_names() == ["tensorboard", "mlflow", "recorder"]
    warnings = plugins.load_warnings()
    assert any("tracker 'mlflow' of plugin 'recorder' was refused" in w for w in warnings)
    assert any("tracker 'Bad Name' of plugin 'recorder' was refused" in w for w in warnings)
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "experiment tracker: tensorboard, mlflow, recorder (repeat" in help_text
    with pytest.raises(ParamsError, match="registered trackers are: tensorboard, mlflow, recorder"):
        make_trackers(["wandb"])
    code = main(["train", "autoencoder", "-o", "code_size", "2", "--epochs", "2", "--log", "recorder", "--json"])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    done = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert _Recorder.seen[:2] == ["start", "step"]
    assert re.fullmatch(r"epoch 1 [\d.]+", _Recorder.seen[2])
    assert _Recorder.seen[-3:] == [
        f"epoch 2 {done['losses']['total']:.6f}",
        "end completed",
        "close",
    ]
    (tagged,) = make_trackers("recorder", tag="!")  # its make's keywords are its options
    assert tagged.tag == "!"


def test_the_documented_tracker_works_as_a_dropin(fresh_plugins, tmp_path, capsys):
    text = DOC.read_text(encoding="utf-8")
    section = text[text.index("## Trackers: experiment tracking") :]
    code = re.findall(r"```python\n(.*?)\n```", section, flags=re.S)[0]
    folder = tmp_path / "plugins"
    folder.mkdir()
    (folder / "csvlog.py").write_text(code + "\n", encoding="utf-8")
    args = ["--plugins-dir", str(folder), "train", "autoencoder", "--epochs", "2", "--json"]
    assert main([*args, "-o", "code_size", "2", "--log", "csv"]) == 0
    out, err = capsys.readouterr()
    assert "warning:" not in err
    done = json.loads(out.strip().splitlines()[-1])
    rows = (Path(done["run_dir"]) / "epochs.csv").read_text(encoding="utf-8").splitlines()
    assert rows[0].startswith("epoch,loss/") and len(rows) == 3
    assert rows[2].startswith("2,")


# -- the lab -------------------------------------------------------------------------------
def test_lab_log_to_tensorboard_and_a_missing_extra(monkeypatch):
    pytest.importorskip("tensorboard")
    pytest.importorskip("gradio")
    from aelab.ui import training
    from aelab.ui.session import new_session

    params, config = SMALL, {"epochs": 1, "seed": 0}
    args = (new_session(), "autoencoder", "digits", None, params, config)
    *_, last = training.start_training(*args, log=["tensorboard"])
    result = last[3]
    assert result["status"] == "completed"
    assert list((Path(result["run_dir"]) / "tensorboard").glob("events.out.tfevents.*"))

    monkeypatch.setitem(sys.modules, "tensorboard", None)
    frames = training.start_training(*args, log=["tensorboard"])
    status = next(frames)[0]
    assert status == (
        "**Not started.** TensorBoard logging needs the tensorboard package: "
        "pip install 'aelab[tensorboard]'."
    )
    with pytest.raises(ParamsError):
        next(frames)
