"""Params schema, the generic trainer and saved runs."""

from __future__ import annotations

import json
import math
import types

import numpy as np
import pytest
import torch

from aelab.blocks import MLPAutoencoder
from aelab.data import load_data
from aelab.errors import ParamsError, RunError
from aelab.hookspecs import hookimpl
from aelab.models import ModelSpec, make_optimizer
from aelab.params import Params, TrainConfig, coerce_option, validate
from aelab.plugins import get_model
from aelab.runs import list_runs, load_optimizer_state, load_run, optimizer_tensors
from aelab.train import Done, Epoch, Start, Step, StopSignal, evaluate, pick_device, train


@pytest.fixture(scope="module")
def digits():
    return load_data("digits")


def run_to_end(events):
    """Collect all events; return them with the Done event."""
    out = list(events)
    assert isinstance(out[-1], Done)
    return out, out[-1]


# -- schema ----------------------------------------------------------------------------------
def test_every_field_has_bounds_or_choices_and_a_description():
    schema = Params.model_json_schema()
    assert schema.get("additionalProperties") is False
    for name, prop in schema["properties"].items():
        assert prop.get("description"), name
    for name, prop in TrainConfig.model_json_schema()["properties"].items():
        assert prop.get("description"), name


@pytest.mark.parametrize(
    "values, fragment",
    [
        ({"code_size": 0}, "'code_size' must be greater than or equal to 1"),
        ({"loss": "huber"}, "'loss' must be 'mse' or 'bce'"),
        ({"colour": 3}, "'colour' is not a known setting"),
        ({"layers": 2, "nodes": [64]}, "nodes lists 1 widths but layers is 2"),
        ({"noise": 2.0}, "'noise' must be less than or equal to 1"),
    ],
)
def test_bad_params_give_one_readable_sentence(values, fragment):
    with pytest.raises(ParamsError) as err:
        validate(Params, values)
    msg = str(err.value)
    assert fragment in msg
    assert "\n" not in msg and msg.endswith(".")


def test_per_layer_widths():
    p = validate(Params, {"layers": 2, "nodes": [64, 16]})
    assert p.widths() == [64, 16]
    assert validate(Params, {"layers": 3, "nodes": 32}).widths() == [32, 32, 32]


def test_cli_option_coercion():
    assert coerce_option(Params, "nodes", "[256, 64]") == [256, 64]
    assert coerce_option(Params, "loss", "bce") == "bce"
    with pytest.raises(ParamsError, match="Unknown option 'depth'"):
        coerce_option(Params, "depth", "3")


def test_undercomplete_refuses_a_code_as_large_as_the_input(digits):
    spec = get_model("autoencoder")
    with pytest.raises(ParamsError, match="not smaller than the input's 64 values"):
        spec.build({"code_size": 64}, digits.sample_shape, digits.kind)


def test_unavailable_device_is_a_clear_error():
    if not torch.cuda.is_available():
        with pytest.raises(ParamsError, match="CUDA is not available"):
            pick_device("cuda")
    assert pick_device("cpu").type == "cpu"


# -- trainer ---------------------------------------------------------------------------------
def test_events_and_learning(digits):
    spec = get_model("autoencoder")
    events, done = run_to_end(train(spec, {"code_size": 8}, digits, {"epochs": 3}, save=False))
    assert isinstance(events[0], Start) and events[0].n_train + events[0].n_val == len(digits)
    epochs = [e for e in events if isinstance(e, Epoch)]
    steps = [e for e in events if isinstance(e, Step)]
    assert [e.epoch for e in epochs] == [1, 2, 3]
    assert len(steps) == 3 * events[0].steps_per_epoch
    assert set(epochs[0].losses) == {"reconstruction", "total"}
    assert epochs[-1].val_losses["total"] < epochs[0].val_losses["total"]
    assert all(e.samples_per_s > 0 for e in epochs)
    assert done.status == "completed" and done.epochs_done == 3


def test_same_seed_same_losses_other_seed_differs(digits):
    spec = get_model("autoencoder")

    def final(seed):
        _, done = run_to_end(
            train(spec, {"code_size": 4}, digits, {"epochs": 2, "seed": seed}, save=False)
        )
        return done.losses["total"], done.val_losses["total"]

    a, b, c = final(7), final(7), final(8)
    assert a == b
    assert a != c


def test_cooperative_stop_keeps_what_was_learned(digits):
    spec = get_model("autoencoder")
    stop = StopSignal()
    seen = 0
    done = None
    for ev in train(spec, {"code_size": 8}, digits, {"epochs": 50}, stop=stop):
        if isinstance(ev, Step):
            seen += 1
            if seen == 5:
                stop.set()
        done = ev
    assert done.status == "stopped" and "stopped by request" in done.message
    assert seen == 5
    run = load_run(done.run_id)
    assert run.status == "stopped" and len(run.history) == 1


class _Poisoned(MLPAutoencoder):
    """Fills its weights with NaN at its 20th step, as an exploding update would."""

    calls = 0
    epoch_one: dict[str, torch.Tensor] = {}

    def training_step(self, batch, optimizer):
        type(self).calls += 1
        if type(self).calls == 13:  # epoch 2's first step: the weights epoch 1 ended with
            type(self).epoch_one = {k: v.clone() for k, v in self.state_dict().items()}
        if type(self).calls == 20:
            with torch.no_grad():
                self.encoder[0].weight.fill_(float("nan"))
        return super().training_step(batch, optimizer)


class _Counting(MLPAutoencoder):
    """Records the global step the trainer reports at each training step."""

    seen: list[int] = []

    def training_step(self, batch, optimizer):
        if self.training:  # validation reuses training_step in eval mode
            type(self).seen.append(self.global_step)
        return super().training_step(batch, optimizer)


def test_trainer_reports_the_global_step_across_resumes(digits, fresh_plugins):
    spec = ModelSpec("counting", "Counting", "Counts steps.", Params, _Counting)
    fresh_plugins.pm.register(types.SimpleNamespace(register_models=_register(spec)), "counting")
    fresh_plugins.invalidate()
    _Counting.seen = []
    config = {"epochs": 2, "batch_size": 128}
    done = list(train(spec, {"code_size": 8}, digits, config))[-1]
    assert _Counting.seen == list(range(24))  # 1437 training samples: 12 steps per epoch
    _Counting.seen = []
    list(train(spec, None, digits, {**config, "epochs": 1}, resume=load_run(done.run_id)))
    assert _Counting.seen == list(range(24, 36))


def test_nan_loss_stops_with_message_and_keeps_good_weights(digits, fresh_plugins):
    spec = ModelSpec("poisoned", "Poisoned", "Goes NaN.", Params, _Poisoned)
    _Poisoned.calls = 0
    events = list(train(spec, {"code_size": 8}, digits, {"epochs": 5, "batch_size": 128}))
    done = events[-1]
    assert done.status == "diverged"
    assert "NaN or infinite" in done.message and "epoch 1 were restored" in done.message
    assert done.diverged_at["epoch"] == 2 and done.diverged_at["phase"] == "training"
    assert [e.epoch for e in events if isinstance(e, Epoch)] == [1]  # 12 steps per epoch
    kept = done.model.state_dict()
    assert all(torch.equal(kept[k], v) for k, v in _Poisoned.epoch_one.items())
    fresh_plugins.pm.register(types.SimpleNamespace(register_models=_register(spec)), "poison")
    fresh_plugins.invalidate()
    run = load_run(done.run_id)
    assert run.status == "diverged" and len(run.history) == 1
    assert all(torch.isfinite(p).all() for p in run.model.parameters())


def _register(spec):
    @hookimpl
    def register_models(register):
        register(spec)

    return register_models


def test_abandoned_training_still_saves_what_was_learned(digits):
    spec = get_model("autoencoder")
    events = train(spec, {"code_size": 8}, digits, {"epochs": 50})
    for ev in events:
        if isinstance(ev, Epoch) and ev.epoch == 2:
            break
    events.close()  # what gradio does when the browser tab goes away
    (run,) = list_runs()
    assert run["status"] == "interrupted" and run["epochs"] == 2
    assert load_run(run["run_id"]).final_val_losses == ev.val_losses


def test_validation_uses_clean_inputs(digits):
    spec = get_model("autoencoder")
    _, done = run_to_end(
        train(spec, {"code_size": 8, "noise": 0.3}, digits, {"epochs": 1}, save=False)
    )
    x = torch.as_tensor(digits.x[:100])
    a, b = evaluate(done.model, x), evaluate(done.model, x)
    assert a == b  # eval mode applies no noise, so it is deterministic


# -- runs ------------------------------------------------------------------------------------
def test_run_round_trip_and_resume(digits, tmp_path):
    spec = get_model("autoencoder")
    _, done = run_to_end(train(spec, {"code_size": 8}, digits, {"epochs": 2}))
    folder = tmp_path / "runs" / done.run_id
    assert sorted(p.name for p in folder.iterdir()) == [
        "optimizer-1.safetensors",
        "run.json",
        "weights-1.safetensors",
    ]
    meta = json.loads((folder / "run.json").read_text())
    assert meta["files"] == {
        "weights": "weights-1.safetensors",
        "optimizer": "optimizer-1.safetensors",
    }
    assert meta["params"]["code_size"] == 8 and meta["data"]["name"] == "digits"
    assert len(meta["history"]) == 2

    run = load_run(done.run_id)
    x = torch.as_tensor(digits.x[:32])
    with torch.no_grad():
        assert torch.equal(run.model.reconstruct(x), done.model.reconstruct(x))
    assert run.optimizer_state is not None

    events = list(train(spec, None, digits, {"epochs": 2}, resume=run))
    epochs = [e.epoch for e in events if isinstance(e, Epoch)]
    assert epochs == [3, 4]
    again = load_run(done.run_id)
    assert [h["epoch"] for h in again.history] == [1, 2, 3, 4]
    # The resume saved version 2 beside version 1, switched to it, then deleted version 1.
    assert sorted(p.name for p in folder.iterdir()) == [
        "optimizer-2.safetensors",
        "run.json",
        "weights-2.safetensors",
    ]
    assert again.final_val_losses["total"] < run.final_val_losses["total"]
    assert [r["run_id"] for r in list_runs()] == [done.run_id]


def test_optimizers_use_fused_kernels_and_old_state_resumes_with_them():
    config = TrainConfig()
    model = get_model("autoencoder").build(None, (1, 8, 8), "image")
    assert config.optimizer == "adam"
    fused = make_optimizer(config, model.parameters())
    assert fused.param_groups[0]["fused"] is True
    # State saved by a step with torch's default (foreach) Adam, as runs from before this change.
    old = torch.optim.Adam(model.parameters(), lr=config.lr)
    model.reconstruct(torch.rand(4, 1, 8, 8)).sum().backward()
    old.step()
    tensors, meta = optimizer_tensors({"model": old})
    assert meta["model"]["param_groups"][0]["fused"] is None
    load_optimizer_state({"model": fused}, {"tensors": tensors, "meta": meta})
    assert fused.param_groups[0]["fused"] is True  # the kernel choice is not taken from the file
    first = next(iter(model.parameters()))
    assert torch.equal(fused.state[first]["exp_avg"], old.state[first]["exp_avg"])
    fused.step()  # and it steps with the loaded state


def test_no_temporary_files_left_behind(digits, tmp_path):
    spec = get_model("autoencoder")
    run_to_end(train(spec, {"code_size": 2}, digits, {"epochs": 1}))
    leftovers = [p for p in (tmp_path / "runs").rglob(".*")]
    assert leftovers == []


def test_loading_a_missing_or_corrupt_run_is_a_clear_error(digits, tmp_path):
    with pytest.raises(RunError, match="No saved run 'ghost'"):
        load_run("ghost")
    with pytest.raises(RunError):
        load_run("../../etc")
    spec = get_model("autoencoder")
    _, done = run_to_end(train(spec, {"code_size": 2}, digits, {"epochs": 1}))
    folder = tmp_path / "runs" / done.run_id
    weights = folder / json.loads((folder / "run.json").read_text())["files"]["weights"]
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(RunError, match="does not match its sha256"):
        load_run(done.run_id)


def test_weights_file_is_safetensors_not_pickle(digits, tmp_path):
    spec = get_model("autoencoder")
    _, done = run_to_end(train(spec, {"code_size": 2}, digits, {"epochs": 1}))
    folder = tmp_path / "runs" / done.run_id
    name = json.loads((folder / "run.json").read_text())["files"]["weights"]
    head = (folder / name).read_bytes()[:64]
    header_len = int.from_bytes(head[:8], "little")
    assert 0 < header_len < 10**6 and head[8:9] == b"{"  # safetensors: length + JSON header


def test_history_is_finite_json(digits, tmp_path):
    spec = get_model("autoencoder")
    _, done = run_to_end(train(spec, {"code_size": 2}, digits, {"epochs": 1}))
    meta = json.loads((tmp_path / "runs" / done.run_id / "run.json").read_text())
    assert all(math.isfinite(v) for v in meta["history"][0]["losses"].values())
    assert np.isclose(meta["history"][0]["val_losses"]["total"], done.val_losses["total"])
