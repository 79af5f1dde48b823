"""The trainer at scale: streamed data trains exactly as data held in memory, losses are read
from the device at the event rate only, mixed precision and compilation train, and a reading
error mid-training is one sentence that keeps the run."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from aelab.callbacks import Callback
from aelab.cli import main
from aelab.data import load_data
from aelab.plugins import get_model
from aelab.runs import load_run
from aelab.train import Trainer

CONFIG = {"epochs": 2, "batch_size": 32, "seed": 1, "device": "cpu"}


@pytest.fixture(scope="module")
def digits_npy(tmp_path_factory):
    """The digits as a uint8 .npy file (0-16 scaled to 0-255), 480 samples."""
    x = load_data("digits").x[:480]
    path = tmp_path_factory.mktemp("scale") / "digits.npy"
    np.save(path, np.round(x * 255).astype(np.uint8))
    return path


def _losses(data, model_id="autoencoder", **config):
    trainer = Trainer(get_model(model_id), {"code_size": 4}, data, {**CONFIG, **config}, save=False)
    done = trainer.fit()
    assert done.status == "completed", done.message
    return trainer


@pytest.mark.parametrize("workers", [0, 1])
def test_streamed_data_trains_exactly_as_data_held_in_memory(digits_npy, workers):
    held = load_data(digits_npy)
    streamed = load_data(digits_npy, stream=True)
    assert not held.streamed and streamed.streamed
    a = _losses(held)
    b = _losses(streamed, workers=workers)
    assert not a.train_feed.streamed and b.train_feed.streamed
    assert b.train_feed.workers == workers
    for x, y in zip(a.history, b.history):  # the same batches in the same order
        assert x["losses"] == pytest.approx(y["losses"], rel=1e-6)
        assert x["val_losses"] == pytest.approx(y["val_losses"], rel=1e-6)


def test_cli_says_whether_the_data_is_held_or_streamed(digits_npy, capsys):
    def first_lines(*extra):
        args = ["train", "linear", "--data", str(digits_npy), "--epochs", "1", *extra]
        assert main(args) == 0
        return capsys.readouterr().err.splitlines()[0]

    assert "held in memory" in first_lines()
    line = first_lines("--stream", "on", "--workers", "1")
    assert "streamed from disk by 1 reader process" in line, line
    assert main(["train", "linear", "--data", str(digits_npy), "--json", "--stream", "on"]) == 0
    start = json.loads(capsys.readouterr().out.splitlines()[0])
    # a memory map is read in the training process unless told otherwise (see auto_workers)
    assert start["streamed"] is True and start["workers"] == 0


def test_an_unreadable_image_mid_training_is_one_sentence_and_keeps_the_run(tmp_path, capsys):
    folder = tmp_path / "faces"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(40):
        Image.fromarray(rng.integers(0, 255, (8, 8), dtype=np.uint8)).save(folder / f"{i:02}.png")
    data = load_data(folder, stream=True)
    (folder / "17.png").write_bytes(b"not a png any more")  # damaged after it was opened
    args = ["train", "linear", "--data", str(folder), "--stream", "on", "--workers", "0"]
    assert main([*args, "--epochs", "1", "--json"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: ") and "17.png" in err[-1], err
    assert "Traceback" not in "\n".join(err)
    trainer = Trainer(get_model("linear"), {}, data, {**CONFIG, "workers": 0})
    done = trainer.fit()
    assert done.status == "failed" and "17.png" in done.message
    assert load_run(done.run_dir).status == "failed"  # saved, as every ending is


class _Reads(Callback):
    """Counts how often a tensor's value is read into Python while training runs."""

    def __init__(self, monkeypatch):
        self.reads = 0
        for name in ("item", "tolist", "__float__"):
            original = getattr(torch.Tensor, name)

            def counted(t, *a, _original=original, **k):
                self.reads += 1
                return _original(t, *a, **k)

            monkeypatch.setattr(torch.Tensor, name, counted)


@pytest.mark.parametrize("model_id", ["autoencoder", "gan"])
def test_losses_are_read_from_the_device_per_epoch_not_per_step(digits_npy, monkeypatch, model_id):
    data = load_data(digits_npy)

    def reads(batch_size: int) -> int:
        config = {**CONFIG, "batch_size": batch_size, "epochs": 1}
        trainer = Trainer(get_model(model_id), {}, data, config, save=False, step_every=0)
        trainer.prepare()
        counter = _Reads(monkeypatch)
        done = trainer.fit()
        monkeypatch.undo()
        assert done.status == "completed"
        return counter.reads, trainer.steps_per_epoch

    few, few_steps = reads(192)
    many, many_steps = reads(8)
    assert many_steps >= 10 * few_steps
    assert many == few  # the same reads for 3 steps as for 48


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_mixed_precision_trains_and_is_recorded(digits_npy, precision):
    data = load_data(digits_npy)
    full = _losses(data, "vae")
    mixed = _losses(data, "vae", precision=precision)
    assert (mixed.scaler is not None) == (precision == "fp16")
    low, high = full.history[-1]["losses"]["total"], mixed.history[-1]["losses"]["total"]
    assert np.isfinite(high) and abs(high - low) < 0.05 * abs(low)  # close, not equal
    assert mixed.config.precision == precision


def test_compiled_networks_train_as_eager_ones(digits_npy):
    data = load_data(digits_npy)
    eager = _losses(data, "linear", epochs=1)
    compiled = _losses(data, "linear", epochs=1, compile=True)
    assert compiled.model.encoder._compiled_call_impl is not None
    assert eager.history[0]["losses"] == pytest.approx(compiled.history[0]["losses"], rel=1e-4)
    assert list(eager.model.state_dict()) == list(compiled.model.state_dict())


# -- the machine's memory and layout (issue 17) ------------------------------------------------


@pytest.mark.parametrize("model_id", ["conv", "dcgan"])
def test_conv_models_train_alike_in_either_memory_format(monkeypatch, tmp_path, model_id):
    from aelab.testing import check_all

    data = load_data("digits").subset(slice(0, 256))
    results = {}
    for fmt in ("contiguous", "channels_last"):
        monkeypatch.setenv("AELAB_MEMORY_FORMAT", fmt)
        trainer = Trainer(get_model(model_id), {}, data, {**CONFIG, "epochs": 1}, save=False)
        assert trainer.fit().status == "completed"
        assert trainer.memory_format == fmt
        # a convolution over several channels (with one, both layouts look the same)
        weight = next(p for p in trainer.model.parameters() if p.dim() == 4 and p.shape[1] > 1)
        assert weight.is_contiguous(memory_format=torch.channels_last) == (fmt == "channels_last")
        results[fmt] = trainer.history[0]["losses"]
        check_all(get_model(model_id), data, tmp_path / fmt)  # build, step, save/load, ONNX
    assert results["contiguous"] == pytest.approx(results["channels_last"], rel=1e-4)


@pytest.mark.parametrize("upsampling", ["nearest", "transpose"])
def test_a_channels_last_decoder_runs_channels_last_from_its_first_map(monkeypatch, upsampling):
    """The decoder's linear head gives a plain map; with channels-last weights it is laid out
    channels-last before the ReLU and upsampling (mixed layouts make their backward passes slow),
    and the decoded images are the ones the plain layout gives."""
    from aelab import layout
    from aelab.models import build_seeded

    spec = get_model("conv")
    params = spec.validate_params({"upsampling": upsampling})
    model = build_seeded(spec, params, (1, 28, 28), "image", 0).eval()
    z = torch.randn(8, params.code_size, generator=torch.Generator().manual_seed(0))
    plain = model.decode_logits(z)
    monkeypatch.setenv("AELAB_MEMORY_FORMAT", "channels_last")  # also when a run sets contiguous
    layout.apply(model, torch.device("cpu"))
    assert model.layout == "channels_last"
    seen = []
    first = model.decoder.body[0]  # the ReLU on the head's map
    first.register_forward_hook(lambda m, inputs, out: seen.append(inputs[0]))
    out = model.decode_logits(z)
    assert seen[0].is_contiguous(memory_format=torch.channels_last)
    assert not seen[0].is_contiguous()
    torch.testing.assert_close(out, plain, rtol=1e-5, atol=1e-6)
    plain_again = layout.contiguous_copy(model).decode_logits(z)  # what ONNX export traces
    torch.testing.assert_close(plain_again, plain, rtol=1e-5, atol=1e-6)


def test_the_gan_step_is_the_usual_dcgan_loop_with_one_generator_pass():
    """The generator's step reuses the discriminator step's fake batch; an explicit loop that
    draws z once, steps D on (real, fake.detach()), then G on D(fake), gives the same losses."""
    import copy

    from aelab.losses import discriminator_loss, generator_loss
    from aelab.models import build_seeded
    from aelab.params import TrainConfig

    spec = get_model("gan")
    data = load_data("digits")
    x = torch.as_tensor(data.x[:64])
    model = build_seeded(spec, spec.validate_params({"noise": 0.1}), data.sample_shape, "image", 0)
    reference = copy.deepcopy(model)
    for m in (model, reference):
        m.train().seed_rng(7, "cpu")
    opts = model.configure_optimizers(TrainConfig())
    ref_opts = reference.configure_optimizers(TrainConfig())
    passes = []
    reference.generator.register_forward_hook(lambda *a: passes.append(1))
    for _ in range(5):
        batch = {"x": x}
        got = {}
        for name, opt in opts.items():
            opt.zero_grad()
            terms = model.training_step(batch, name)
            terms["loss"].backward()
            opt.step()
            got[name] = float(terms["loss"])
        r = reference
        fake = r._generate(r.randn(64, r.params.code_size, like=x))
        ref_opts["discriminator"].zero_grad()
        d_loss = discriminator_loss(r._d(r._to_d(x)), r._d(fake.detach()), r.params.label_smoothing)
        d_loss.backward()
        ref_opts["discriminator"].step()
        ref_opts["generator"].zero_grad()
        g_loss = generator_loss(r._d(fake))
        g_loss.backward()
        ref_opts["generator"].step()
        assert got["discriminator"] == pytest.approx(float(d_loss), rel=1e-6)
        assert got["generator"] == pytest.approx(float(g_loss), rel=1e-6)
    assert len(passes) == 5  # one generator pass per batch
