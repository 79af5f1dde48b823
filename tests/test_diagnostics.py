"""Collapse diagnostics and defaults that work: the default VAE family and GANs trained with the
default settings on digits raise no warning, deliberately collapsed ones do, and a model reports
the learning rates it really trains at."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from aelab import diagnostics
from aelab.data import load_data
from aelab.models import Model, describe_learning_rates
from aelab.params import Params, TrainConfig
from aelab.plugins import get_model
from aelab.runs import load_run
from aelab.train import Done, Trainer, train

SEED = 0


@pytest.fixture(scope="module")
def digits():
    """Digits and the held-out split the trainer uses for seed 0 (val_fraction 0.2)."""
    data = load_data("digits")
    return data, data.split(0.2, SEED)[1]


def fit_defaults(model_id: str, params: dict, data, seed: int = SEED):
    """Train with the default training settings (TrainConfig: 10 epochs, Adam at 1e-3, ...)."""
    events = list(train(get_model(model_id), params, data, {"seed": seed}, save=False))
    done = events[-1]
    assert isinstance(done, Done) and done.status == "completed", done.message
    assert done.epochs_done == TrainConfig().epochs
    return done.model.eval()


# -- defaults that work --------------------------------------------------------------------


@pytest.mark.parametrize("model_id", ["vae", "cvae", "gan", "dcgan", "aae"])
def test_default_training_on_digits_raises_no_collapse_warning(model_id, digits, record_property):
    data, held_out = digits
    model = fit_defaults(model_id, {}, data)
    found = diagnostics.diagnose(model, held_out)
    figures = diagnostics.collapse_figures(model, held_out)
    samples = figures["samples"]
    record_property("diversity", samples["diversity"])
    assert found == [], [d.message for d in found]
    # Not merely above the thresholds: clearly varied samples. The AAE's default training sits
    # closer to the line (diversity 0.31-0.40 over seeds 0-3; seed 1 would warn), so its margin
    # is smaller: a known weakness of its defaults, not hidden.
    margin = 1.1 if model_id == "aae" else 1.2
    assert samples["diversity"] > margin * diagnostics.MIN_DIVERSITY, samples
    assert samples["coverage"] > 4 * diagnostics.MIN_COVERAGE, samples
    if "posterior" in figures:  # the VAE family: the code carries information, in every unit
        post = figures["posterior"]
        record_property("kl", post["kl_total"])
        assert post["kl_total"] > 1.5 * diagnostics.MIN_KL_NATS, post
        assert post["active_units"] == post["units"] == model.params.code_size


def test_default_vae_and_gan_stay_uncollapsed_across_seeds(digits):
    data, _ = digits
    for seed in (1, 2):
        held_out = data.split(0.2, seed)[1]
        for model_id in ("vae", "gan"):
            model = fit_defaults(model_id, {}, data, seed)
            found = diagnostics.diagnose(model, held_out)
            assert found == [], (model_id, seed, [d.message for d in found])
            if model_id == "gan":
                # As varied as the data (the old defaults reached 0.55 and 0.46 here).
                samples = diagnostics.sample_figures(model, held_out)
                assert samples["diversity"] > 0.8 and samples["coverage"] > 0.7, samples


def test_the_old_defaults_collapsed(digits, monkeypatch):
    """What this change fixed: the VAE without free bits and with torch's initial log-variance
    collapses within the default 10 epochs."""
    import aelab_plugins.vae as vae

    data, held_out = digits
    monkeypatch.setattr(vae, "INITIAL_LOGVAR", None)
    model = fit_defaults("vae", {"free_bits": 0.0}, data)
    codes = {d.code for d in diagnostics.diagnose(model, held_out)}
    assert codes == {"posterior_collapse", "mode_collapse"}


# -- deliberately collapsed ----------------------------------------------------------------


def test_a_vae_with_a_huge_beta_shows_posterior_collapse(digits):
    data, held_out = digits
    model = fit_defaults("vae", {"beta": 50.0, "free_bits": 0.0}, data)
    found = {d.code: d for d in diagnostics.diagnose(model, held_out)}
    assert "posterior_collapse" in found
    warning = found["posterior_collapse"]
    figures = warning.figures
    assert figures["kl_total"] < diagnostics.MIN_KL_NATS
    assert len(figures["kl_per_unit"]) == figures["units"] == 8
    assert sum(figures["kl_per_unit"]) == pytest.approx(figures["kl_total"])
    assert f"{figures['kl_total']:.2f} nats" in warning.message
    # Its samples are all the same blur too, and the page says where that comes from.
    assert "posterior collapse above" in found["mode_collapse"].message


def test_a_gan_whose_generator_barely_learns_shows_mode_collapse(digits):
    data, held_out = digits
    model = fit_defaults("gan", {"lr_generator": 1e-6}, data)
    found = diagnostics.diagnose(model, held_out)
    assert [d.code for d in found] == ["mode_collapse"]
    assert found[0].figures["diversity"] < diagnostics.MIN_DIVERSITY
    assert "generator's learning rate" in found[0].message  # advice for an adversarial model


class _Sampler(Model):
    """A generator stand-in: samples are ``make(n, generator)``; it has one weight."""

    capabilities = frozenset({"sample"})
    steps = ("generator", "discriminator")

    def __init__(self, make):
        super().__init__(Params(), (1, 8, 8))
        self.w = nn.Parameter(torch.zeros(1))
        self.make = make

    def sample(self, n, generator=None):
        return self.make(n, generator)


def test_a_generator_that_ignores_its_noise_shows_mode_collapse(digits):
    data, held_out = digits
    one = torch.as_tensor(held_out.x[:1])
    found = diagnostics.diagnose(_Sampler(lambda n, g: one.repeat(n, 1, 1, 1)), held_out)
    assert [d.code for d in found] == ["mode_collapse"]
    assert found[0].figures["diversity"] == pytest.approx(0.0, abs=1e-9)
    assert "nearly identical" in found[0].message
    # A few modes repeated: varied pairwise, but they cover a handful of examples only.
    few = torch.as_tensor(data.x[:3])
    found = diagnostics.diagnose(_Sampler(lambda n, g: few.repeat(n, 1, 1, 1)[:n]), held_out)
    assert [d.code for d in found] == ["mode_collapse"]
    assert found[0].figures["diversity"] > diagnostics.MIN_DIVERSITY
    assert found[0].figures["coverage"] < diagnostics.MIN_COVERAGE
    assert "repeat a few outputs" in found[0].message


def test_a_sampler_of_real_data_is_not_collapsed(digits):
    data, held_out = digits
    train_x = torch.as_tensor(data.split(0.2, SEED)[0].x)

    def real(n, g):
        return train_x[torch.randperm(len(train_x), generator=g)[:n]]

    assert diagnostics.diagnose(_Sampler(real), held_out) == []
    figures = diagnostics.sample_figures(_Sampler(real), held_out)
    assert 0.9 < figures["diversity"] < 1.1 and figures["coverage"] > 0.8


class _KLReporter(Model):
    """An encoder whose validation reports a ``kl`` term but exposes no posterior."""

    capabilities = frozenset({"encode", "decode", "reconstruct"})

    def __init__(self, kl: float):
        super().__init__(Params(), (1, 8, 8))
        self.w = nn.Parameter(torch.zeros(1))
        self.kl = kl

    def validation_step(self, batch):
        return {"reconstruction": torch.tensor(1.0), "kl": torch.tensor(self.kl)}


def test_the_posterior_check_follows_capabilities_not_ids(digits):
    _, held_out = digits
    found = diagnostics.diagnose(_KLReporter(0.05), held_out)
    assert [d.code for d in found] == ["posterior_collapse"]
    assert found[0].figures["kl_total"] == pytest.approx(0.05)
    assert "units" not in found[0].message  # no per-unit figures to quote
    assert diagnostics.diagnose(_KLReporter(5.0), held_out) == []
    # An autoencoder without KL or posterior and a model without samples: nothing to check.
    plain = get_model("autoencoder").build({}, held_out.sample_shape, held_out.kind)
    assert diagnostics.collapse_figures(plain, held_out) == {}


def test_diagnose_leaves_the_model_as_it_found_it(digits):
    data, held_out = digits
    model = get_model("cvae").build({}, data.sample_shape, data.kind)
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    first = diagnostics.collapse_figures(model, held_out)
    assert model.training
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert diagnostics.collapse_figures(model, held_out) == first  # seeded: the same figures
    # The conditional VAE's posterior needs labels: bare samples give no posterior figure.
    assert "posterior" not in diagnostics.collapse_figures(model, np.asarray(held_out.x))
    for warning in diagnostics.diagnose(model.eval(), held_out):  # an untrained model
        assert warning.message.endswith(".") and ". " not in warning.message  # one sentence


# -- the learning rates a model trains at --------------------------------------------------


def test_a_gan_reports_its_own_learning_rates_not_the_shared_one(digits):
    data, _ = digits
    params = {"lr_generator": 3e-4, "lr_discriminator": 7e-4}
    config = TrainConfig(lr=1e-2)
    model = get_model("gan").build(params, data.sample_shape, data.kind)
    rates = model.learning_rates(config)
    assert rates == {"discriminator": 7e-4, "generator": 3e-4}
    # What the trainer really steps with.
    trainer = Trainer(get_model("gan"), params, data, config, save=False)
    trainer.prepare()
    used = {n: opt.param_groups[0]["lr"] for n, opt in trainer.optimizers.items()}
    assert used == rates
    text = describe_learning_rates(rates, config.lr)
    assert "discriminator 0.0007" in text and "generator 0.0003" in text
    assert "0.01 is not used" in text


def test_other_models_report_the_training_learning_rate_where_they_use_it(digits):
    data, _ = digits
    config = TrainConfig(lr=2e-3)
    vae = get_model("vae").build({}, data.sample_shape, data.kind)
    assert vae.learning_rates(config) == {"model": 2e-3}
    assert describe_learning_rates(vae.learning_rates(config), config.lr) == "learning rate 0.002"
    aae = get_model("aae").build({}, data.sample_shape, data.kind)
    assert aae.learning_rates(config) == {
        "reconstruction": 2e-3,
        "discriminator": 5e-4,
        "generator": 5e-4,
    }
    assert "not used" not in describe_learning_rates(aae.learning_rates(config), config.lr)


# -- help texts and saved runs ---------------------------------------------------------------


@pytest.mark.parametrize("model_id", ["gan", "dcgan"])
def test_gan_help_does_not_speak_of_an_encoder(model_id):
    spec = get_model(model_id)
    texts = [spec.help, spec.description]
    texts += [f.description or "" for f in spec.params.model_fields.values()]
    for text in texts:
        assert "encoder" not in text.lower() and "reconstruct" not in text.lower(), text


def test_a_run_saved_before_free_bits_still_loads(digits, tmp_path):
    data, _ = digits
    done = Trainer(
        get_model("vae"), {}, data, {"epochs": 1}, runs_dir=str(tmp_path), save=True
    ).fit()
    meta_path = tmp_path / done.run_id / "run.json"
    meta = json.loads(meta_path.read_text())
    del meta["params"]["free_bits"]  # as written before the field existed
    meta_path.write_text(json.dumps(meta))
    run = load_run(done.run_id, runs_dir=tmp_path)
    assert run.params.free_bits == get_model("vae").params.model_fields["free_bits"].default
    x = torch.as_tensor(data.x[:4])
    torch.testing.assert_close(run.model.reconstruct(x), done.model.eval().reconstruct(x))


def test_the_cli_warns_of_a_collapse_and_stays_quiet_otherwise(capsys):
    import json

    from aelab.cli import main

    args = ["train", "vae", "--epochs", "2", "-o", "free_bits", "0", "-o", "beta", "50"]
    assert main([*args, "--json"]) == 0
    summary = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert "posterior_collapse" in [w["code"] for w in summary["warnings"]]
    assert main(args) == 0
    assert "warning:" in capsys.readouterr().err
    assert main(["train", "autoencoder", "--epochs", "1", "--json"]) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["warnings"] == []
