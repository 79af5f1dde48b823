"""The Trainer object: fit, callbacks, batch dicts, metrics, DDP, seed isolation, the NaN guard."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from aelab.blocks import MLPAutoencoder
from aelab.callbacks import Callback
from aelab.cli import main
from aelab.data import Dataset, load_data
from aelab.errors import ParamsError
from aelab.models import METRICS, ModelSpec
from aelab.params import Params
from aelab.plugins import get_model
from aelab.runs import load_run
from aelab.train import Done, Start, Trainer

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def digits():
    return load_data("digits")


class Recorder(Callback):
    """Writes down which hook saw which event, in order."""

    def __init__(self):
        self.calls: list[tuple[str, str]] = []

    def on_start(self, trainer, event):
        self.calls.append(("start", type(event).__name__))

    def on_step(self, trainer, event):
        self.calls.append(("step", type(event).__name__))

    def on_epoch(self, trainer, event):
        self.calls.append(("epoch", type(event).__name__))

    def on_end(self, trainer, event):
        self.calls.append(("end", event.status))

    def close(self, trainer):
        self.calls.append(("close", ""))


def test_fit_returns_the_result_and_callbacks_see_every_event(digits):
    rec = Recorder()
    trainer = Trainer(
        get_model("autoencoder"),
        {"code_size": 8},
        digits,
        {"epochs": 2, "batch_size": 256},
        callbacks=[rec],
        save=False,
    )
    done = trainer.fit()
    assert isinstance(done, Done) and done.status == "completed" and done.epochs_done == 2
    steps = trainer.steps_per_epoch
    assert rec.calls[0] == ("start", "Start")
    assert rec.calls.count(("step", "Step")) == 2 * steps
    assert [c for c in rec.calls if c[0] == "epoch"] == [("epoch", "Epoch")] * 2
    assert rec.calls[-2:] == [("end", "completed"), ("close", "")]
    assert len(trainer.history) == 2 and done.model is trainer.model


def test_prepare_then_step_and_evaluate_by_hand(digits):
    trainer = Trainer(get_model("autoencoder"), {"code_size": 8}, digits, {"epochs": 1}, save=False)
    start = trainer.prepare()
    assert isinstance(start, Start) and trainer.prepare() is start  # idempotent
    trainer.epoch = 1
    batch = next(trainer.batches())
    assert set(batch) == {"x"} and batch["x"].dtype == torch.float32
    before = trainer.evaluate()[0]["total"]
    for batch in trainer.batches():
        row = trainer.step(batch)
        assert set(row) == {"reconstruction", "total"}
    assert trainer.evaluate()[0]["total"] < before


def test_batches_are_dicts_with_the_fields_a_model_declares(digits):
    cvae = Trainer(get_model("cvae"), {}, digits, {"epochs": 1}, save=False)
    cvae.prepare()
    batch = next(cvae.batches())
    assert set(batch) == {"x", "y"} and batch["y"].dtype == torch.long
    unlabelled = Dataset("plain", digits.x[:100].reshape(100, -1), "flat")
    with pytest.raises(ParamsError, match="needs a label for every sample"):
        Trainer(get_model("cvae"), {}, unlabelled, {"epochs": 1}, save=False).prepare()


class _Weighted(MLPAutoencoder):
    """Asks for an extra batch field, "w", and weights each sample's error by it."""

    batch_fields = ("x", "w")

    def training_step(self, batch, optimizer):
        x, w = batch["x"], batch["w"]
        err = (self.reconstruct(x) - x).pow(2).flatten(1).mean(1)
        loss = (w * err).sum() / w.sum()
        return {"weighted": loss, "loss": loss, METRICS: {"mean_weight": w.mean()}}


def test_a_model_can_ask_for_its_own_batch_field(digits):
    spec = ModelSpec("weighted", "Weighted", "Weighted error.", Params, _Weighted)
    w = np.linspace(0.5, 1.5, len(digits)).astype(np.float32)
    data = Dataset("digits", digits.x, "image", digits.labels, extra={"w": w})
    seen = []

    class Peek(Callback):
        def on_step(self, trainer, event):
            seen.append(event)

    done = Trainer(
        spec, {"code_size": 8}, data, {"epochs": 1}, callbacks=[Peek()], save=False
    ).fit()
    assert done.status == "completed" and set(done.losses) == {"weighted", "total"}
    assert "mean_weight" in done.metrics and "mean_weight" not in done.losses
    assert all("mean_weight" in s.metrics for s in seen)
    with pytest.raises(ParamsError, match="needs the batch field 'w'"):
        Trainer(spec, {"code_size": 8}, digits, {"epochs": 1}, save=False).prepare()


def test_metrics_are_reported_apart_from_losses(digits):
    done = Trainer(get_model("sparse"), {}, digits, {"epochs": 2}, save=False).fit()
    assert {"mean_activation", "psnr"} <= set(done.val_metrics)
    assert "mean_activation" in done.metrics
    for values in (done.losses, done.val_losses):
        assert not {"mean_activation", "psnr"} & set(values)
    # The total is the sum of the loss terms alone.
    assert done.losses["total"] == pytest.approx(
        done.losses["reconstruction"] + done.losses["sparsity_kl"]
    )
    gan = Trainer(get_model("gan"), {}, digits, {"epochs": 1}, save=False).fit()
    assert 0.0 < gan.metrics["d_real"] < 1.0 and "d_real" not in gan.losses


def test_legacy_plugins_with_x_signatures_still_train(digits):
    with pytest.warns(DeprecationWarning, match="batch dict"):

        class Legacy(MLPAutoencoder):
            needs_labels = True

            def training_step(self, x, optimizer, y=None):
                assert y is not None and y.dtype == torch.long
                return super().training_step({"x": x}, optimizer)

    assert Legacy.batch_fields == ("x", "y")
    spec = ModelSpec("legacy", "Legacy", "Old contract.", Params, Legacy)
    done = Trainer(spec, {"code_size": 8}, digits, {"epochs": 1}, save=False).fit()
    assert done.status == "completed"


# -- seeds ------------------------------------------------------------------------------------
def _final_loss(spec_id: str, data, seed: int, params: dict) -> float:
    config = {"epochs": 2, "batch_size": 64, "seed": seed}
    return Trainer(get_model(spec_id), params, data, config, save=False).fit().val_losses["total"]


@pytest.mark.parametrize(
    "spec_id, params", [("denoising", {"noise": 0.3}), ("vae", {}), ("gan", {"noise": 0.1})]
)
def test_concurrent_trainings_reproduce_their_seed(digits, spec_id, params):
    """Two trainings at once in one process (two lab tabs) give what each gives alone."""
    alone = _final_loss(spec_id, digits, 0, params)
    other = _final_loss(spec_id, digits, 1, params)
    results: dict[int, float] = {}
    barrier = threading.Barrier(2)

    def run(slot: int, seed: int) -> None:
        barrier.wait()  # start together, so their steps interleave
        results[slot] = _final_loss(spec_id, digits, seed, params)

    threads = [threading.Thread(target=run, args=(i, s)) for i, s in enumerate((0, 0))]
    threads.append(threading.Thread(target=lambda: results.__setitem__(2, other)))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results[0] == alone and results[1] == alone
    assert alone != other


def test_training_leaves_the_global_generator_alone(digits):
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    Trainer(get_model("denoising"), {"noise": 0.3}, digits, {"epochs": 1}, save=False).fit()
    assert torch.equal(torch.rand(3), expected)


# -- the NaN guard ---------------------------------------------------------------------------
def test_divergence_restores_weights_and_optimizer_state(digits, tmp_path):
    """`aelab train linear --lr 10 --optimizer sgd`: huge but finite weights must not be kept."""
    config = {"epochs": 3, "lr": 10.0, "optimizer": "sgd", "seed": 0}
    trainer = Trainer(get_model("linear"), {}, digits, config)
    trainer.prepare()
    initial = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    done = trainer.fit()
    assert done.status == "diverged" and done.diverged_at is not None
    assert "diverged at epoch 1" in done.message and "initial weights were restored" in done.message
    state = done.model.state_dict()
    assert all(torch.equal(state[k], v) for k, v in initial.items())
    assert all(len(opt.state) == 0 for opt in trainer.optimizers.values())
    run = load_run(done.run_id)
    assert run.status == "diverged"
    # Resumed at a sane learning rate it trains; the saved lr does not come back.
    again = Trainer(run.spec, None, digits, {**config, "lr": 0.001, "epochs": 2}, resume=run)
    result = again.fit()
    assert result.status == "completed", result.message
    assert again.optimizers["model"].param_groups[0]["lr"] == 0.001
    assert max(float(p.detach().abs().max()) for p in result.model.parameters()) < 100


# -- distributed ------------------------------------------------------------------------------
MODELS = ("autoencoder", "gan")  # one optimizer, and two that leave parameters out of steps


def _two_processes(tmp_path: Path, plain: bool) -> list[dict[str, dict]]:
    """Train every model of MODELS in two gloo processes; each rank's weights by model (and
    its losses, in ``<prefix>-<model>.json``)."""
    rendezvous = tmp_path / f"rdv-{plain}"
    worker = ROOT / "tests" / "workers" / "ddp_worker.py"
    procs = [
        subprocess.Popen(
            [sys.executable, str(worker), str(r), "2", str(rendezvous), ",".join(MODELS)]
            + [str(tmp_path / f"{plain}-{r}")]
            + (["plain"] if plain else []),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for r in range(2)
    ]
    for p in procs:
        out, _ = p.communicate(timeout=240)
        assert p.returncode == 0, out[-2000:]
    return [
        {m: load_file(str(tmp_path / f"{plain}-{r}-{m}.safetensors")) for m in MODELS}
        for r in range(2)
    ]


def test_two_gloo_processes_keep_identical_weights(tmp_path):
    a, b = _two_processes(tmp_path, plain=False)
    for model_id in MODELS:
        assert a[model_id].keys() == b[model_id].keys() and a[model_id]
        assert all(torch.equal(a[model_id][k], b[model_id][k]) for k in a[model_id]), model_id
    # Without DistributedDataParallel each process learns from its own half: they drift apart.
    c, d = _two_processes(tmp_path, plain=True)
    for model_id in MODELS:
        assert any(not torch.equal(c[model_id][k], d[model_id][k]) for k in c[model_id])


def test_two_processes_reproduce_one_process_of_the_same_global_batch(tmp_path):
    """Same shuffles, the global batch's noise and batch statistics, averaged gradients: a
    2-process run of global batch 64 has the losses of a 1-process run of batch 64."""
    sys.path.insert(0, str(ROOT / "tests" / "workers"))
    try:
        from ddp_worker import CONFIG, StepLosses, params_of
    finally:
        sys.path.pop(0)
    _two_processes(tmp_path, plain=False)
    data = load_data("digits").subset(slice(0, 256))
    for model_id in MODELS:
        steps = StepLosses()
        trainer = Trainer(
            get_model(model_id), params_of(model_id), data, CONFIG, save=False, callbacks=[steps]
        )
        trainer.fit()
        two = json.loads((tmp_path / f"False-0-{model_id}.json").read_text())
        assert len(two["steps"]) == len(steps.rows) == 2 * 3  # 192 samples, batches of 64
        for got, want in zip(two["steps"], steps.rows):
            assert got.keys() == want.keys()
            assert np.allclose(list(got.values()), list(want.values()), rtol=1e-4, atol=1e-6), (
                model_id,
                got,
                want,
            )
        for got, want in zip(two["history"], trainer.history):
            for key in ("losses", "val_losses"):
                assert np.allclose(
                    list(got[key].values()), list(want[key].values()), rtol=1e-4, atol=1e-6
                ), (model_id, key, got[key], want[key])


def test_cli_val_fraction_zero_trains_on_everything(capsys):
    def start_event(fraction: str) -> dict:
        args = ["train", "autoencoder", "--epochs", "1", "--val-fraction", fraction, "--json"]
        assert main(args) == 0
        lines = capsys.readouterr().out.splitlines()
        return next(json.loads(x) for x in lines if '"event": "start"' in x)

    everything = start_event("0")
    assert everything["n_val"] == 0 and everything["n_train"] == 1797
    half = start_event("0.5")
    assert half["n_val"] + half["n_train"] == 1797 and abs(half["n_val"] - 898) <= 1
    assert main(["train", "autoencoder", "--val-fraction", "0.95"]) == 1
    assert "'val_fraction' must be less than or equal to 0.9" in capsys.readouterr().err


def test_drawing_pictures_during_training_does_not_shift_its_noise(digits):
    """The lab draws corrupted inputs between steps; that must not consume the training's noise."""
    from aelab import inspect as ins

    class Painter(Callback):
        def on_step(self, trainer, event):
            ins.corrupt(trainer.model, digits.x[:8])

    def final(callbacks):
        config = {"epochs": 1, "batch_size": 128, "seed": 5}
        trainer = Trainer(
            get_model("denoising"), {"noise": 0.3}, digits, config, callbacks=callbacks, save=False
        )
        return trainer.fit().losses["total"]

    assert final([Painter()]) == final([])


def test_readme_training_example_runs_as_printed(capsys):
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    after = text[text.index("### Training from Python") :]
    code = after[after.index("```python\n") + 10 : after.index("\n```", after.index("```python"))]
    exec(compile(code, "README.md", "exec"), {"__name__": "readme"})
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines[:3]] == ["1", "2", "3"]
    status, run_dir = lines[3].split()
    assert status == "completed" and Path(run_dir).is_dir()


class _NaNAtStep(MLPAutoencoder):
    """Reports a NaN loss at global step 30, after its weights moved on from epoch 1."""

    def training_step(self, batch, optimizer):
        terms = super().training_step(batch, optimizer)
        if self.training and self.global_step == 30:
            terms["loss"] = terms["loss"] * float("nan")
        return terms


def test_divergence_goes_back_to_the_last_good_epoch_exactly(digits):
    spec = ModelSpec("nan30", "NaN at 30", "Goes NaN.", Params, _NaNAtStep)
    kept = {}

    class KeepEpochs(Callback):
        def on_epoch(self, trainer, event):
            opt = trainer.optimizers["model"]
            kept[event.epoch] = (
                {k: v.clone() for k, v in trainer.model.state_dict().items()},
                [
                    {k: v.clone() for k, v in opt.state[p].items()}
                    for p in opt.param_groups[0]["params"]
                ],
            )

    config = {"epochs": 4, "batch_size": 128}  # 12 steps per epoch: step 30 is in epoch 3
    trainer = Trainer(spec, {"code_size": 8}, digits, config, callbacks=[KeepEpochs()])
    done = trainer.fit()
    assert done.status == "diverged" and done.diverged_at["step"] == 31
    assert "epoch 2 were restored" in done.message and sorted(kept) == [1, 2]
    weights, opt_state = kept[2]
    state = done.model.state_dict()
    assert all(torch.equal(state[k], v) for k, v in weights.items())
    opt = trainer.optimizers["model"]
    for p, saved in zip(opt.param_groups[0]["params"], opt_state):
        assert all(torch.equal(opt.state[p][k], v) for k, v in saved.items())
    meta = json.loads((Path(done.run_dir) / "run.json").read_text())
    assert meta["status"] == "diverged" and meta["diverged_at"]["epoch"] == 3
    on_disk = load_file(str(Path(done.run_dir) / meta["files"]["weights"]))
    assert all(torch.equal(on_disk[k], v) for k, v in weights.items())


def test_readme_python_api_example_runs_as_printed(capsys):
    import aelab

    text = (ROOT / "README.md").read_text(encoding="utf-8")
    after = text[text.index("### Use it from Python") :]
    code = after[after.index("```python\n") + 10 : after.index("\n```", after.index("```python"))]
    exec(compile(code, "README.md", "exec"), {"__name__": "readme"})
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "completed True"
    assert lines[1] == "(5, 8) (5, 64) (1797,)"
    flagged, _, n, _ = lines[2].split()
    assert n == "1797" and abs(int(flagged) - 0.05 * 1797) <= 2
    assert lines[3] == "['reconstruction', 'total']"
    assert set(aelab.__all__) >= {"train", "load", "Trained", "load_data", "__version__"}
    assert all(hasattr(aelab, name) for name in aelab.__all__)
