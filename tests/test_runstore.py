"""The run store never lies: runs are their folders, saves are all-or-nothing (checked with real
``kill -9``), a lock guards training, ids are plain names, and diverged runs export on purpose."""

from __future__ import annotations

import itertools
import json
import os
import random
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from aelab import fsio, runs
from aelab.cli import main
from aelab.data import load_data
from aelab.errors import ExportError, RunError
from aelab.export import export_model, export_run, exports_root
from aelab.ids import IdError, check_id, is_id
from aelab.params import TrainConfig
from aelab.plugins import get_model
from aelab.runs import (
    RunLock,
    is_locked,
    list_runs,
    load_run,
    load_run_by_id,
    lock_run,
    optimizer_tensors,
    save_run,
)

POSIX = pytest.mark.skipif(
    not hasattr(os, "fork") or fsio.fcntl is None, reason="needs fork, SIGKILL and flock"
)


@pytest.fixture(scope="module")
def digits():
    return load_data("digits")


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def _save(digits, folder: Path, *, epochs: int = 1, **kw) -> Path:
    """An autoencoder saved as if trained ``epochs`` epochs on digits, with real Adam moments."""
    spec = get_model("autoencoder")
    params = spec.validate_params({"code_size": 4})
    torch.manual_seed(0)
    model = spec.build(params, digits.sample_shape, digits.kind)
    config = TrainConfig(epochs=1)
    optimizers = model.configure_optimizers(config)
    model.reconstruct(torch.as_tensor(digits.x[:32])).square().mean().backward()
    for opt in optimizers.values():
        opt.step()
    history = [
        {"epoch": e, "losses": {"total": 1.0 / e}, "val_losses": {"total": 1.0 / e}}
        for e in range(1, epochs + 1)
    ]
    model.eval()
    return save_run(
        None, spec, params, config, model, optimizers, history, digits.meta(), folder=folder, **kw
    )


def _clean(folder: Path, also: tuple[str, ...] | list[str] = ()) -> list[str]:
    """The folder's entries: run.json, exactly the files it names, and ``also``."""
    meta = json.loads((folder / "run.json").read_text())
    names = sorted(p.name for p in folder.iterdir())
    assert names == sorted(["run.json", *meta["files"].values(), *also]), names
    return names


# -- ids ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("good", ["A", "vae-20250101-120000-ab12", "a.b_c-D9", "x" * 128, "a..b"])
def test_plain_names_are_ids(good):
    assert check_id(good) == good and is_id(good)


@pytest.mark.parametrize(
    "bad, reason",
    [
        ("run\n", "ends with a newline"),  # re.match(r"^...$") accepts this one
        ("a/b", "path separator"),
        ("a\\b", "path separator"),
        ("/etc", "path separator"),
        ("..", "relative"),
        (".", "relative"),
        ("", "empty"),
        ("x" * 129, "longer than 128"),
        ("a\tb", "control character"),
        ("a\x00b", "control character"),
        (".hidden", "starts with '.'"),
        ("-rf", "starts with '-'"),
        ("run.", "ends with '.'"),
        ("a b", "contains ' '"),
        ("C:x", "contains ':'"),
        (None, "not text"),
    ],
)
def test_unsafe_names_are_refused_in_one_sentence(bad, reason):
    with pytest.raises(IdError) as err:
        check_id(bad, "run id")
    msg = str(err.value)
    assert reason in msg and "letters, digits" in msg and msg.count(".") >= 1
    assert "\n" not in msg  # a newline in the value is shown escaped
    assert not is_id(bad)


def test_a_run_id_with_a_trailing_newline_is_never_written(digits, tmp_path):
    spec = get_model("autoencoder")
    model = spec.build(None, digits.sample_shape, digits.kind)
    with pytest.raises(RunError, match="ends with a newline"):
        save_run("run\n", spec, model.params, TrainConfig(), model, {}, [], digits.meta())
    with pytest.raises(ExportError, match="ends with a newline"):
        export_model(model, spec, model.params, run_id="run\n", data_meta=digits.meta())
    assert not (tmp_path / "runs").exists() and not exports_root().exists()


def test_load_run_by_id_takes_ids_never_paths(digits, tmp_path):
    _save(digits, tmp_path / "runs" / "inside")
    _save(digits, tmp_path / "outside")
    assert load_run_by_id("inside").run_id == "inside"
    for bad in ("../outside", str(tmp_path / "outside"), "inside\n", "inside/", ".", ""):
        with pytest.raises(RunError, match="not allowed"):
            load_run_by_id(bad)
    with pytest.raises(RunError, match="No saved run 'ghost'"):
        load_run_by_id("ghost")
    # The command line may still name a run folder explicitly.
    assert load_run(tmp_path / "outside").run_id == "outside"


# -- a run is its folder -------------------------------------------------------------------------
def test_a_copied_run_is_its_own_run(digits, tmp_path, capsys):
    a = _save(digits, tmp_path / "runs" / "A")
    b = tmp_path / "runs" / "B"
    shutil.copytree(a, b)  # cp -r runs/A runs/B
    before = _files(a)
    copy = load_run("B")
    assert copy.run_id == "B" and copy.path == b  # although B's run.json still says "A"
    assert main(["train", "--resume", "B", "--epochs", "1"]) == 0, capsys.readouterr().err
    assert _files(a) == before  # byte for byte
    again = load_run("B")
    assert [h["epoch"] for h in again.history] == [1, 2]
    assert json.loads((b / "run.json").read_text())["run_id"] == "B"
    assert sorted(r["run_id"] for r in list_runs()) == ["A", "B"]
    _clean(b)


def test_save_run_into_a_folder_with_details(digits, tmp_path):
    at = {"epoch": 3, "step": 40, "terms": ["kl"]}
    folder = _save(
        digits, tmp_path / "elsewhere" / "r1", status="diverged", details={"diverged_at": at}
    )
    assert folder == tmp_path / "elsewhere" / "r1"
    meta = json.loads((folder / "run.json").read_text())
    assert meta["diverged_at"] == at and meta["status"] == "diverged" and meta["run_id"] == "r1"
    run = load_run(folder)
    assert run.details == {"diverged_at": at} and run.status == "diverged"
    with pytest.raises(RunError, match="cannot replace"):
        _save(digits, tmp_path / "r2", details={"history": []})
    with pytest.raises(RunError, match="does not match the folder"):
        spec = get_model("autoencoder")
        save_run("other", spec, run.params, run.config, run.model, {}, [], {}, folder=folder)
    with pytest.raises(RunError, match="not allowed"):  # an empty name: never the current folder
        _save(digits, Path("."))


def test_runs_of_the_old_layout_load_and_resume(digits, tmp_path):
    """Runs saved before versioned files (weights.safetensors, no 'files' entry) still work."""
    folder = _save(digits, tmp_path / "runs" / "old", epochs=2)
    run = load_run(folder)
    meta = json.loads((folder / "run.json").read_text())
    for key in ("files", "sha256", "version"):
        del meta[key]
    for f in folder.iterdir():
        f.unlink()
    weights = {k: v.contiguous().clone() for k, v in run.model.state_dict().items()}
    save_file(weights, folder / runs.WEIGHTS)
    tensors, opt_meta = optimizer_tensors(_optimizers_with_state(run))
    save_file(tensors, folder / runs.OPTIMIZER)
    (folder / "run.json").write_text(json.dumps({**meta, "optimizer": opt_meta}))

    old = load_run("old")
    assert old.optimizer_error is None and old.optimizer_state["tensors"]
    assert all(torch.equal(v, weights[k]) for k, v in old.model.state_dict().items())
    spec, data_meta = old.spec, old.data_meta
    save_run(
        None, spec, old.params, old.config, old.model, {}, old.history, data_meta, folder=folder
    )
    assert _clean(folder) == ["optimizer-1.safetensors", "run.json", "weights-1.safetensors"]

    # A damaged weights file of the old layout (no checksum) is still a clear error.
    (folder / "weights-1.safetensors").rename(folder / runs.WEIGHTS)
    (folder / runs.WEIGHTS).write_bytes((folder / runs.WEIGHTS).read_bytes()[:100])
    meta = json.loads((folder / "run.json").read_text())
    del meta["files"], meta["sha256"]
    (folder / "run.json").write_text(json.dumps(meta))
    with pytest.raises(RunError, match="cannot be loaded into model 'autoencoder'"):
        load_run("old")


def _optimizers_with_state(run):
    opts = run.model.configure_optimizers(run.config)
    run.model.reconstruct(torch.rand(4, *run.model.sample_shape)).mean().backward()
    for opt in opts.values():
        opt.step()
    return opts


@pytest.mark.parametrize(
    "damage, problem",
    [
        ("truncate", "does not match its sha256"),
        ("truncate, no checksum", "cannot be read"),
        ("delete", "is missing"),
    ],
)
def test_a_damaged_optimizer_state_is_reported_when_resuming(
    digits, tmp_path, capsys, damage, problem
):
    folder = _save(digits, tmp_path / "runs" / "R")
    meta = json.loads((folder / "run.json").read_text())
    name = meta["files"]["optimizer"]
    if damage.startswith("truncate"):
        (folder / name).write_bytes((folder / name).read_bytes()[:50])
    else:
        (folder / name).unlink()
    if "no checksum" in damage:
        del meta["sha256"]
        (folder / "run.json").write_text(json.dumps(meta))
    before = _files(folder)
    run = load_run("R")  # still loads: it evaluates and exports
    assert run.optimizer_error and name in run.optimizer_error
    assert "cannot be continued" in run.optimizer_error and problem in run.optimizer_error
    with pytest.raises(RunError, match="cannot be continued"):
        run.optimizer_state  # noqa: B018 - reading it is what resuming does
    assert main(["train", "--resume", "R", "--epochs", "1"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cannot be continued: its optimizer state" in err[0], err
    assert _files(folder) == before


# -- all-or-nothing, under kill -9 --------------------------------------------------------------
# A helper process imports aelab once, then forks one child per job, so that each of the many
# kills costs milliseconds. A saving child reports each file-system step (replace, unlink,
# fsync) before doing it and waits for a "g" byte: the test kills it exactly there.
HELPER = r"""
import json, os, sys
import torch
from aelab import runs
from aelab.params import TrainConfig
from aelab.plugins import get_model


def out(text):
    os.write(1, (text + "\n").encode())


def wait():
    if os.read(0, 1) != b"g":
        os._exit(3)


def hooked(op, fn):
    def wrapper(*args, **kwargs):
        names = [os.path.basename(os.fsdecode(a)) for a in args if not isinstance(a, int)]
        out(" ".join(["op", op, *names]))
        wait()
        return fn(*args, **kwargs)
    return wrapper


def save(folder, count, hooks=True):
    spec = get_model("linear")
    params = spec.validate_params({"code_size": 2})
    config = TrainConfig()
    try:
        start = len(runs.load_run(folder).history)
    except runs.RunError:
        start = 0
    if hooks:
        for op in ("replace", "rename", "unlink", "fsync"):
            setattr(os, op, hooked(op, getattr(os, op)))
        out("op start")
        wait()
    for v in range(start + 1, start + count + 1):
        model = spec.build(params, (4,), "flat")
        opts = model.configure_optimizers(config)
        with torch.no_grad():
            for p in model.parameters():
                p.fill_(float(v))
        for opt in opts.values():
            for p in opt.param_groups[0]["params"]:
                opt.state[p] = {"step": torch.tensor(float(v)), "exp_avg": torch.full_like(p, v),
                                "exp_avg_sq": torch.full_like(p, v)}
        history = [{"epoch": e, "losses": {"total": 0.0}, "val_losses": {}}
                   for e in range(1, v + 1)]
        meta = {"name": "t", "kind": "flat", "sample_shape": [4]}
        runs.save_run(None, spec, params, config, model, opts, history, meta, folder=folder)
    if hooks:
        out("done")


def hold_lock(folder):
    lock = runs.lock_run(folder)
    out("locked")
    os.read(0, 1)
    lock.release()


save("warm-up", 1, hooks=False)  # whatever loads lazily loads once, before the children fork
out("ready")
while True:
    line = b""
    while not line.endswith(b"\n"):
        byte = os.read(0, 1)
        if not byte:
            sys.exit(0)
        line += byte
    job, *args = json.loads(line)
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            out(f"pid {os.getpid()}")
            {"save": save, "lock": hold_lock}[job](*args)
        except BaseException as exc:
            out("error " + repr(exc))
            code = 1
        os._exit(code)
    os.waitpid(pid, 0)
    out("exit")
"""


class Helper:
    """Talks to the helper process: start a job, step it, kill it."""

    def __init__(self, cwd: Path):
        self.log = open(cwd / "helper.err", "wb")  # noqa: SIM115 - closed in close()
        self.proc = subprocess.Popen(
            [sys.executable, "-c", HELPER],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.log,
            cwd=cwd,
            bufsize=0,
        )
        assert self.line() == "ready", self.errors()
        self.pid = None

    def errors(self) -> str:
        self.log.flush()
        return Path(self.log.name).read_text(errors="replace")[-3000:]

    def line(self) -> str:
        text = self.proc.stdout.readline().decode()
        assert text, f"the helper died: {self.errors()}"
        assert not text.startswith("error"), text
        return text.rstrip("\n")

    def start(self, job: str, *args) -> None:
        self.proc.stdin.write((json.dumps([job, *args]) + "\n").encode())
        pid = self.line()
        assert pid.startswith("pid "), pid
        self.pid = int(pid.split()[1])

    def go(self) -> None:
        self.proc.stdin.write(b"g")

    def kill(self) -> None:
        os.kill(self.pid, signal.SIGKILL)
        self.finish()

    def finish(self) -> None:
        while self.line() != "exit":  # the child is gone once the helper has reaped it
            pass

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=30)
        self.log.close()


@pytest.fixture(scope="module")
def helper(tmp_path_factory):
    if not hasattr(os, "fork") or fsio.fcntl is None:
        pytest.skip("needs fork, SIGKILL and flock")
    h = Helper(tmp_path_factory.mktemp("helper"))
    yield h
    h.close()


def _whole(folder: Path) -> int:
    """The saved version (0: none yet); its weights, optimizer state and history must agree."""
    if not (folder / "run.json").exists():
        return 0
    run = load_run(folder)
    n = len(run.history)
    assert n > 0 and [h["epoch"] for h in run.history] == list(range(1, n + 1))
    values = {float(v) for t in run.model.state_dict().values() for v in t.flatten()}
    assert values == {float(n)}, f"weights {values} with a history of {n} epochs"
    tensors = run.optimizer_state["tensors"]  # raises if the state is damaged
    values = {float(v) for t in tensors.values() for v in t.flatten()}
    assert tensors and values == {float(n)}, f"optimizer {values} with {n} epochs"
    return n


def _save_round(helper: Helper, folder: Path, count: int, kill_at=None) -> tuple[bool, list[str]]:
    """One child saving ``count`` versions, killed at the ``kill_at``-th step (an index, or a
    function of the step's line); returns whether it was killed, and the steps it reported."""
    helper.start("save", str(folder), count)
    steps: list[str] = []
    while True:
        line = helper.line()
        if line == "done":
            helper.finish()
            return False, steps
        assert line.startswith("op "), line
        index = len(steps)
        steps.append(line)
        if kill_at(line) if callable(kill_at) else kill_at == index:
            helper.kill()
            return True, steps
        helper.go()


@POSIX
def test_kill_9_at_any_moment_leaves_a_whole_run(helper, tmp_path):
    folder = tmp_path / "runs" / "loop"
    rng = random.Random(0)
    version, kills, leftovers = 0, 0, set()
    # Kill at step 0, 1, 2, ... of a child saving two versions, until one outlives its target;
    # then at seeded random steps.
    targets, steps_per_round = itertools.count(), 0
    random_rounds = 12
    while True:
        if targets is not None:
            target = next(targets)
        elif random_rounds:
            random_rounds -= 1
            target = rng.randrange(steps_per_round)
        else:
            break
        killed, steps = _save_round(helper, folder, 2, target)
        now = _whole(folder)
        # Either the previous complete run or a newer complete one, never a mix or a loss.
        assert version <= now <= version + 2, (version, now, steps)
        if not killed:
            assert now == version + 2
            targets, steps_per_round = None, len(steps)
        kills += killed
        version = now
        if now:
            named = set(json.loads((folder / "run.json").read_text())["files"].values())
            leftovers |= {p.name for p in folder.iterdir()} - named - {"run.json"}
    assert kills >= 25 and version >= 2
    assert any(".tmp-" in n for n in leftovers) and any(n.startswith("weights-") for n in leftovers)

    # Killed just before run.json switches: new files and a temporary run.json are left over...
    def before_switch(line: str) -> bool:
        return line.startswith("op replace .run.json.tmp-")

    killed, _ = _save_round(helper, folder, 1, before_switch)
    assert killed and _whole(folder) == version
    assert len(list(folder.iterdir())) > 3
    with lock_run(folder):  # ...which taking the lock removes,
        assert len(_clean(folder, also=[".lock"])) == 4
    killed, _ = _save_round(helper, folder, 1, before_switch)
    assert killed and len(list(folder.iterdir())) > 3
    killed, _ = _save_round(helper, folder, 1)  # ...and so does the next save.
    assert not killed and _whole(folder) == version + 1
    assert len(_clean(folder)) == 3


# -- the training lock ---------------------------------------------------------------------------
def test_lock_conflicts_within_one_process(digits, tmp_path):
    folder = _save(digits, tmp_path / "runs" / "L")
    lock = lock_run(folder)
    assert isinstance(lock, RunLock) and lock.held and is_locked(folder)
    with pytest.raises(RunError) as err:
        lock_run(folder)  # what a second tab of the lab does
    assert str(err.value) == (
        "Run 'L' is already being trained in this process (another tab or thread); wait for it "
        "to finish or stop it before continuing it."
    )
    # Reading and listing ignore the lock file.
    assert load_run("L").run_id == "L" and [r["run_id"] for r in list_runs()] == ["L"]
    lock.release()
    lock.release()  # twice is harmless
    assert not is_locked(folder) and not (folder / ".lock").exists()
    with lock_run(folder) as again:
        assert is_locked(folder) and again.held
    assert not is_locked(folder)
    assert not is_locked(tmp_path / "nowhere")
    with lock_run(tmp_path / "runs" / "fresh"):  # a new run's folder is created
        assert (tmp_path / "runs" / "fresh").is_dir()
    with pytest.raises(RunError, match="not allowed"):
        lock_run(tmp_path / "runs" / "..")


@POSIX
def test_a_lock_dies_with_its_process(helper, tmp_path):
    folder = tmp_path / "runs" / "K"
    helper.start("lock", str(folder))
    assert helper.line() == "locked"
    assert is_locked(folder)
    with pytest.raises(RunError, match=rf"by another process \(pid {helper.pid}\); wait for it"):
        lock_run(folder)
    helper.kill()  # kill -9 leaves the lock file, but no lock
    assert not is_locked(folder)
    with lock_run(folder):
        pass


@POSIX
def test_training_a_locked_run_is_refused(digits, tmp_path):
    folder = _save(digits, tmp_path / "runs" / "busy")
    before = _files(folder)
    with lock_run(folder):
        proc = subprocess.run(
            [sys.executable, "-m", "aelab.cli", "train", "--resume", "busy", "--epochs", "1"],
            capture_output=True,
            text=True,
            timeout=240,
        )
        held = _files(folder)
    assert proc.returncode != 0
    assert (
        f"error: Run 'busy' is already being trained by another process (pid {os.getpid()}); "
        "wait for it to finish or stop it before continuing it." in proc.stderr
    ), proc.stderr
    assert held.pop(".lock") == f"{os.getpid()}\n".encode()
    assert held == before and _files(folder) == before


# -- exports ---------------------------------------------------------------------------------------
def test_a_diverged_run_is_exported_only_on_purpose(digits, tmp_path, capsys):
    at = {"epoch": 3, "step": 40, "terms": ["reconstruction", "kl"]}
    _save(digits, tmp_path / "runs" / "D", status="diverged", details={"diverged_at": at})
    with pytest.raises(ExportError) as err:
        export_run("D")
    msg = str(err.value)
    assert msg.startswith(
        "Run 'D' diverged at epoch 3, step 40 (its reconstruction and kl losses became NaN or "
        "infinite), so it is exported only on purpose"
    )
    assert "--allow-diverged" in msg and "allow_diverged=True" in msg
    assert main(["export", "D", "--graphs", "autoencoder"]) == 1
    err_lines = capsys.readouterr().err.strip().splitlines()
    assert len(err_lines) == 1 and "diverged at epoch 3" in err_lines[0]
    assert not exports_root().exists()

    assert main(["export", "D", "--graphs", "autoencoder", "--allow-diverged"]) == 0
    manifest = json.loads((exports_root() / "D" / "manifest.json").read_text())
    assert manifest["run_status"] == "diverged" and manifest["diverged_at"] == at

    _save(digits, tmp_path / "runs" / "ok")
    result = export_run("ok", graphs=["encoder"])
    assert result.manifest["run_status"] == "completed" and "diverged_at" not in result.manifest


def test_a_diverged_run_without_a_recorded_place_is_refused_too(digits, tmp_path):
    _save(digits, tmp_path / "runs" / "D2", status="diverged")
    with pytest.raises(ExportError, match=r"diverged during training \(where is not recorded\)"):
        export_run("D2")


def _export(model, spec, out: Path, **kw):
    return export_model(
        model, spec, model.params, run_id="e", data_meta={}, out_dir=out, graphs=["encoder"], **kw
    )


@pytest.mark.parametrize("swap", ["exchange", "aside"])
def test_forced_export_replaces_the_folder_whole(tmp_path, monkeypatch, swap):
    if swap == "exchange" and fsio.renameat2() is None:
        pytest.skip("no renameat2 here")
    if swap == "aside":
        monkeypatch.setattr(fsio, "exchange", lambda a, b: False)
    spec = get_model("autoencoder")
    model = spec.build({"code_size": 4}, (1, 8, 8), "image")
    out = tmp_path / "exports" / "e"
    first = _export(model, spec, out)
    seen = []
    real_rmtree = fsio.shutil.rmtree

    def rmtree(path, *a, **kw):  # the old export is deleted only once the new one is in place
        seen.append(json.loads((out / "manifest.json").read_text())["graphs"][0]["sha256"])
        return real_rmtree(path, *a, **kw)

    monkeypatch.setattr(fsio.shutil, "rmtree", rmtree)
    with torch.no_grad():
        next(model.parameters()).add_(1.0)
    second = _export(model, spec, out, force=True)
    new_sha = second.manifest["graphs"][0]["sha256"]
    assert new_sha != first.manifest["graphs"][0]["sha256"]
    assert seen == [new_sha]
    assert sorted(p.name for p in out.parent.iterdir()) == ["e"]


def test_an_interrupted_replacement_is_repaired_by_the_next_export(tmp_path):
    spec = get_model("autoencoder")
    model = spec.build({"code_size": 4}, (1, 8, 8), "image")
    root = exports_root()
    out = root / "e"
    _export(model, spec, out)
    before = _files(out)
    # What a crash leaves between "rename the old export aside" and "rename the new one in",
    # plus a half-written temporary folder; and leftovers of another export in the same root.
    os.rename(out, root / ".e.old-1700000000000000000-4242")
    (root / ".e.tmp-abc12345").mkdir()
    (root / ".e.tmp-abc12345" / "encoder.onnx").write_bytes(b"half")
    (root / ".other.tmp-zz").mkdir()
    (root / ".other.lock").write_text("")
    with pytest.raises(ExportError, match="already exists; pass --force"):
        _export(model, spec, out)  # the previous export is back in place, whole
    assert _files(out) == before
    assert sorted(p.name for p in root.iterdir()) == ["e"]
    _export(model, spec, out, force=True)
    assert sorted(p.name for p in root.iterdir()) == ["e"]
