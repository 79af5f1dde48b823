"""Each CLI command end to end, errors included: one line on stderr, non-zero exit, no traceback."""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys

import numpy as np
import pytest

from aelab.cli import main
from aelab.plugins import get_models


def run_cli(args, capsys):
    code = main(args)
    out, err = capsys.readouterr()
    return code, out, err


def test_models_json_lists_schema(capsys):
    code, out, _ = run_cli(["models", "--json"], capsys)
    assert code == 0
    models = {m["id"]: m for m in json.loads(out)}
    ae = models["autoencoder"]
    assert set(ae) >= {"id", "name", "plugin", "description", "params"}
    props = ae["params"]["properties"]
    assert {"code_size", "layers", "nodes", "loss", "noise"} <= set(props)
    assert props["code_size"]["minimum"] == 1


def test_models_and_datasets_plain(capsys):
    code, out, _ = run_cli(["models"], capsys)
    assert code == 0 and "autoencoder" in out
    code, out, _ = run_cli(["datasets"], capsys)
    assert code == 0
    for name in ("digits", "shapes", "swissroll", ".npy", ".csv"):
        assert name in out


def test_train_json_events_and_final_line(capsys):
    code, out, _ = run_cli(
        [
            "train",
            "autoencoder",
            "--data",
            "digits",
            "-o",
            "code_size",
            "4",
            "--epochs",
            "2",
            "--json",
        ],
        capsys,
    )
    assert code == 0
    lines = [json.loads(line) for line in out.strip().splitlines()]
    kinds = {line.get("event") for line in lines[:-1]}
    assert {"start", "step", "epoch"} <= kinds
    last = lines[-1]
    assert set(last) >= {"run", "losses", "samples_per_s"}
    assert last["losses"]["total"] > 0 and last["samples_per_s"] > 0
    code, out, _ = run_cli(["runs"], capsys)
    assert last["run"] in out
    code, out, _ = run_cli(["eval", last["run"], "--json"], capsys)
    assert code == 0 and out.count("\n") == 1  # one object on one line, like train --json
    assert json.loads(out)["losses"]["total"] > 0


def test_train_progress_and_resume(capsys):
    code, out, err = run_cli(
        ["train", "autoencoder", "--epochs", "1", "-o", "code_size", "2"], capsys
    )
    assert code == 0
    assert "Run saved in" in out and "epoch 1/1" in err
    run_id = out.strip().splitlines()[-1].rsplit("/", 1)[-1]
    code, out, _ = run_cli(["train", "--resume", run_id, "--epochs", "1", "--json"], capsys)
    assert code == 0
    epochs = [json.loads(x)["epoch"] for x in out.splitlines() if '"event": "epoch"' in x]
    assert epochs == [2]


def test_train_on_a_user_file(tmp_path, capsys):
    rng = np.random.default_rng(0)
    path = tmp_path / "points.npy"
    np.save(path, rng.random((200, 10)).astype("float32"))
    code, out, _ = run_cli(
        [
            "train",
            "autoencoder",
            "--data",
            str(path),
            "-o",
            "code_size",
            "3",
            "-o",
            "nodes",
            "[16, 8]",
            "--epochs",
            "1",
            "--json",
        ],
        capsys,
    )
    assert code == 0
    assert json.loads(out.splitlines()[-1])["losses"]["total"] > 0


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["train", "nosuchmodel"], "Unknown model 'nosuchmodel'"),
        (["train", "autoencoder", "-o", "code_size", "0"], "'code_size' must be greater than"),
        (["train", "autoencoder", "-o", "depth", "3"], "Unknown option 'depth'"),
        (["train", "autoencoder", "--data", "nowhere.csv"], "nowhere.csv"),
        (["train", "autoencoder", "--epochs", "0"], "'epochs' must be greater than"),
        (["train", "--resume", "ghost"], "No saved run 'ghost'"),
        (["eval", "ghost"], "No saved run 'ghost'"),
        (["models", "nosuch"], "Unknown model 'nosuch'; registered models are: aae, autoencoder"),
        (["models", "nosuch", "--json"], "Unknown model 'nosuch'; registered models are: aae"),
        (["train", "nosuch", "--help"], "Unknown model 'nosuch'; registered models are: aae"),
    ],
)
def test_errors_are_one_line(args, fragment, capsys):
    code, out, err = run_cli(args, capsys)
    assert code != 0
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    assert fragment in lines[0]


def test_console_script_runs_without_traceback(tmp_path):
    env = {**os.environ, "AELAB_RUNS_DIR": str(tmp_path / "runs")}
    bin_dir = os.path.dirname(sys.executable)
    exe = os.path.join(bin_dir, "aelab")
    proc = subprocess.run(
        [exe, "train", "autoencoder", "-o", "loss", "huber"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 1
    assert proc.stderr.strip().startswith("error: ") and "Traceback" not in proc.stderr
    assert "'loss' must be 'mse' or 'bce'" in proc.stderr


def test_eval_passes_labels_to_a_conditional_model(capsys):
    code, out, _ = run_cli(["train", "cvae", "--epochs", "1", "--json"], capsys)
    assert code == 0
    run_id = json.loads(out.splitlines()[-1])["run"]
    code, out, err = run_cli(["eval", run_id, "--json"], capsys)
    assert code == 0, err
    losses = json.loads(out)["losses"]
    assert losses["total"] > 0 and "kl" in losses


@pytest.fixture(scope="module")
def png_folder(tmp_path_factory):
    """32 RGB 12×12 PNGs in two class sub-folders: bright squares and dark rings."""
    from PIL import Image

    root = tmp_path_factory.mktemp("pngs")
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:12, :12]
    for cls in ("squares", "rings"):
        (root / cls).mkdir()
        for i in range(16):
            cx, cy = rng.integers(4, 8, size=2)
            if cls == "squares":
                mask = (abs(xx - cx) < 3) & (abs(yy - cy) < 3)
            else:
                mask = abs(np.hypot(xx - cx, yy - cy) - 3) < 1
            img = np.zeros((12, 12, 3), np.uint8)
            img[mask] = rng.integers(120, 255, size=3)
            Image.fromarray(img).save(root / cls / f"{i}.png")
    return root


@pytest.mark.parametrize(
    "model_id", sorted(m for m, spec in get_models().items() if "image" in spec.accepts)
)
def test_every_image_model_trains_on_an_image_folder(model_id, png_folder, capsys):
    code, out, err = run_cli(
        [
            "train",
            model_id,
            "--data",
            str(png_folder),
            "--epochs",
            "1",
            "--batch-size",
            "8",
            "-o",
            "code_size",
            "4" if model_id != "overcomplete" else "0",
            "--json",
        ],
        capsys,
    )
    assert code == 0, err
    last = json.loads(out.splitlines()[-1])
    assert last["status"] == "completed" and math.isfinite(last["losses"]["total"])
    start = json.loads(out.splitlines()[0])
    assert start["event"] == "start" and start["n_train"] + start["n_val"] == 32


# -- a model's -o keys and the training settings, from their schemas ---------------------------
def _row(out: str, key: str) -> list[str]:
    """The cells of the options table's row for ``key`` (KEY, TYPE, ALLOWED, DEFAULT)."""
    line = next(line for line in out.splitlines() if line.startswith(f"  {key} "))
    return re.split(r"\s{2,}", line.strip())


def test_models_id_lists_each_option_from_the_schema(capsys):
    code, out, err = run_cli(["models", "denoising"], capsys)
    assert code == 0 and err == ""
    assert "Options of denoising (set each with -o KEY VALUE):" in out
    flat = " ".join(out.split())
    props = get_models()["denoising"].schema()["properties"]
    for key, prop in props.items():  # every key, with its description below its row
        assert _row(out, key)[0] == key
        assert " ".join(prop["description"].split()) in flat
    assert _row(out, "code_size") == ["code_size", "int", "[1, 1024]", "8"]
    assert _row(out, "nodes") == ["nodes", "int or list of int", "-", "128"]
    assert _row(out, "noise") == ["noise", "float", "[0, 1]", "0.3"]  # this model's own default
    assert _row(out, "corruption") == [
        "corruption",
        "str",
        "gaussian, mask, salt_pepper",
        "gaussian",
    ]
    # Exclusive bounds show as open intervals; a fixed literal as its one value.
    code, out, _ = run_cli(["models", "gan"], capsys)
    assert _row(out, "lr_generator")[2] == "(0, 1]" and _row(out, "beta1")[2] == "[0, 1)"
    assert _row(out, "loss")[2:] == ["bce only", "bce"]


def test_models_id_json_is_that_models_object_on_one_line(capsys):
    code, out, _ = run_cli(["models", "vae", "--json"], capsys)
    assert code == 0 and out.count("\n") == 1
    assert json.loads(out) == json.loads(json.dumps(get_models()["vae"].to_json()))


def test_core_json_outputs_are_one_line_each(capsys):
    code, out, _ = run_cli(["train", "linear", "--epochs", "1", "--json"], capsys)
    assert code == 0
    for args in (
        ["models", "--json"],
        ["applications", "--json"],
        ["datasets", "--json"],
        ["runs", "--json"],
        ["plugins"],
    ):
        code, out, err = run_cli(args, capsys)
        assert code == 0, err
        assert out.endswith("\n") and out.count("\n") == 1, args
        assert json.loads(out), args
    assert json.loads(out)[0]["name"]  # plugins
    code, out, _ = run_cli(["runs", "--json"], capsys)
    assert [r["model"] for r in json.loads(out)] == ["linear"]


def _help(capsys, *args: str) -> str:
    with pytest.raises(SystemExit) as exit_:
        main(["train", *args])
    out, err = capsys.readouterr()
    assert exit_.value.code == 0 and err == ""
    return out


@pytest.mark.parametrize(
    "args, model",
    [
        (["denoising", "--help"], "denoising"),
        (["-h", "vae"], "vae"),
        # option values are skipped: `gan` is the data here, and `-o` takes two words
        (["--data", "gan", "-o", "code_size", "4", "--epochs", "2", "vae", "-h"], "vae"),
        (["--keep-labels", "3", "5", "cvae", "--help"], "cvae"),  # as cmd_train reads it
    ],
)
def test_train_help_with_a_model_ends_with_its_options(capsys, args, model):
    out = _help(capsys, *args)
    assert "--epochs N" in out  # the usual help first
    table = out[out.index(f"Options of {model} (set each with -o KEY VALUE):") :]
    for key in get_models()[model].schema()["properties"]:
        assert _row(table, key)[0] == key
    assert f"Example: aelab train {model} -o code_size" in table


def test_train_help_without_a_model_points_to_aelab_models(capsys):
    out = _help(capsys, "--epochs", "3", "--help")
    assert "Options of" not in out
    assert "run `aelab models ID`" in " ".join(out.split())


def test_train_help_shows_each_setting_from_train_config(capsys):
    from aelab.params import TrainConfig

    flat = " ".join(_help(capsys, "--help").split())
    for key, field in TrainConfig.model_fields.items():
        flag = "--" + key.replace("_", "-")
        assert flag in flat, flag
        # the help right after the flag: its schema description, then the values and default
        after = flat[flat.index(f"{flag} ", flat.index("options:")) :]
        want = f"{field.description} "
        switch = field.annotation is bool  # a flag without a value
        assert after.split(" ", 1 if switch else 2)[-1].startswith(want), (flag, after[:200])
        default = "Off by default." if switch else f"; default {field.default}."
        assert default in after[: after.index(" --", 3)], flag
    assert "One of adam, adamw, sgd, rmsprop; default adam." in flat
    assert "Range [1, 100000]; default 10." in flat


# -- output into a pipe whose reader leaves early -------------------------------------------
AELAB = os.path.join(os.path.dirname(sys.executable), "aelab")


@pytest.mark.parametrize(
    "args, code",
    [(["models"], 141), (["models", "--json"], 141), (["train", "vae", "--help"], 0)],
)
def test_a_closed_pipe_stops_quietly(args, code):
    """`aelab models | true`: the reader is gone before the first write."""
    proc = subprocess.Popen([AELAB, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()  # before aelab has even started: its first write finds no reader
    err = proc.stderr.read().decode()
    proc.stderr.close()
    assert proc.wait(timeout=120) == code
    assert "BrokenPipe" not in err and "Traceback" not in err and "Exception ignored" not in err
    assert err == ""


@pytest.mark.skipif(not hasattr(__import__("fcntl"), "F_SETPIPE_SZ"), reason="Linux pipes")
def test_head_c_10_reads_a_little_then_closes_the_pipe():
    """`aelab models --json | head -c 10`, with a pipe small enough that aelab is still writing
    when the reader leaves."""
    import fcntl

    read_end, write_end = os.pipe()
    fcntl.fcntl(write_end, fcntl.F_SETPIPE_SZ, 4096)
    proc = subprocess.Popen([AELAB, "models", "--json"], stdout=write_end, stderr=subprocess.PIPE)
    os.close(write_end)
    head = b""
    while len(head) < 10:
        head += os.read(read_end, 10 - len(head))
    os.close(read_end)
    err = proc.stderr.read().decode()
    proc.stderr.close()
    assert proc.wait(timeout=120) == 141
    assert head == b'[{"id": "a'
    assert err == "", err


def test_train_cuts_a_csv_series_into_windows_and_a_resume_keeps_them(tmp_path, capsys):
    import math

    from aelab.runs import load_run

    rows = ["time,price,volume"]
    rows += [f"{t},{100 + 10 * math.sin(t / 10):.3f},{50 + t % 7}" for t in range(300)]
    (tmp_path / "s.csv").write_text("\n".join(rows) + "\n")
    args = ["train", "conv1d", "--data", str(tmp_path / "s.csv"), "--epochs", "1", "--json"]
    assert main([*args, "--window", "32", "--stride", "4"]) == 0
    run_id = json.loads(capsys.readouterr().out.splitlines()[-1])["run"]
    run = load_run(run_id)
    assert run.series["window"] == 32 and run.series["stride"] == 4
    assert run.model.sample_shape == (2, 32)  # two channels (time is the axis, not a channel)
    assert main(["train", "--resume", run_id, "--epochs", "1", "--json"]) == 0
    capsys.readouterr()
    assert load_run(run_id).series["window"] == 32
    assert main([*args, "--window", "999"]) == 1
    assert "longer than the series" in capsys.readouterr().err


def test_nproc_trains_in_two_processes_and_saves_one_normal_run(capfd):
    from aelab.runs import load_run

    args = ["train", "autoencoder", "--epochs", "1", "--seed", "0"]
    assert main([*args, "--nproc", "2", "--json"]) == 0
    out = capfd.readouterr().out  # the launched processes print to the same terminal
    run_id = json.loads([line for line in out.splitlines() if '"run"' in line][-1])["run"]
    run = load_run(run_id)  # one run, saved by the first process, that loads in one process
    assert run.status == "completed" and len(run.history) == 1
    assert main(["train", "--resume", run_id, "--epochs", "1", "--json"]) == 0
    assert main([*args, "--nproc", "0"]) == 1
    assert "--nproc must be a number of processes, 1 or more, not 0." in capfd.readouterr().err


def _train_on_a_terminal(tmp_path, columns):
    """`aelab train` on a pseudo-terminal of ``columns`` columns (0: one that reports no size,
    as a bare pty does); everything it wrote to the terminal."""
    import fcntl
    import pty
    import struct
    import termios

    env = {**os.environ, "AELAB_RUNS_DIR": str(tmp_path / "runs")}
    pid, fd = pty.fork()
    if pid == 0:  # the child: the CLI, its stdout and stderr the terminal
        os.execve(AELAB, [AELAB, "train", "autoencoder", "--epochs", "2", "--seed", "0"], env)
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    out = bytearray()
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        out += chunk
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, out.decode(errors="replace")
    return out.decode(errors="replace")


@pytest.mark.parametrize("columns", [100, 0])
def test_train_draws_a_tqdm_bar_on_a_terminal(tmp_path, columns):
    """The CLI's progress bar is tqdm's, redrawn in place, with a line kept per epoch, also on
    a terminal that reports no width (tqdm would draw a bar 0 wide there)."""
    text = _train_on_a_terminal(tmp_path, columns)
    assert text.startswith("Training autoencoder on digits")
    frames = [f for f in text.split("\r") if "autoencoder on digits:" in f]
    assert len(frames) >= 3, text  # redrawn as it goes, not one line per step
    assert re.search(r"\d+%\|.*\| \d+/\d+ \[", frames[-1]), frames[-1]  # tqdm's own layout
    assert "100%" in text and "epoch 1/2" in text and "epoch 2/2" in text
    assert all(len(f.rstrip("\n")) <= max(columns, 100) for f in frames)
