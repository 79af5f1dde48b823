"""Each family shows the property that defines it, trained briefly (seeded) on real digits data."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from aelab import metrics
from aelab.data import load_data
from aelab.losses import corrupt, jacobian_frobenius_sq, sigmoid_jacobian_sq
from aelab.plugins import get_model
from aelab.train import Done, train

SEED = 0


@pytest.fixture(autouse=True)
def _one_thread():
    """One thread: the tiny models here run faster than with threads fighting over shared cores."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def digits():
    """Digits and the same held-out split the trainer uses (val_fraction 0.2, seed 0)."""
    data = load_data("digits")
    train_set, test_set = data.split(0.2, SEED)
    return data, train_set, test_set, torch.as_tensor(test_set.x)


@pytest.fixture(scope="module")
def feature_net(digits):
    """The small digit classifier whose features the Fréchet distance compares."""
    torch.set_num_threads(1)  # module fixtures run before the autouse one
    _, train_set, _, _ = digits
    return metrics.train_feature_net(train_set.x, train_set.labels, epochs=15, seed=SEED)


def fit(
    model_id: str, params: dict, data, epochs: int = 10, lr: float = 1e-2, batch_size: int = 64
):
    """Train with the generic trainer and return (model in eval mode, Done event)."""
    config = {
        "epochs": epochs,
        "lr": lr,
        "batch_size": batch_size,
        "seed": SEED,
        "val_fraction": 0.2,
    }
    events = list(train(get_model(model_id), params, data, config, save=False, step_every=0))
    done = events[-1]
    assert isinstance(done, Done) and done.status == "completed", done.message
    return done.model.eval(), done


def mse(model, x: torch.Tensor) -> float:
    with torch.no_grad():
        return float(((model.reconstruct(x) - x) ** 2).mean())


def mean_image_mse(train_set, x_test: torch.Tensor) -> float:
    """The error of always answering the mean training image: what a model that learned nothing gets."""
    return float(((x_test - torch.as_tensor(train_set.x).mean(0)) ** 2).mean())


def quality(model, digits, net) -> metrics.SampleQuality:
    _, train_set, test_set, _ = digits
    return metrics.sample_quality(
        lambda n, g: model.sample(n, generator=g),
        train_set.x,
        train_set.labels,
        test_set.x,
        test_set.labels,
        n=300,
        seed=SEED,
        net=net,
    )


def test_linear_reaches_pca(digits, record_property):
    data, train_set, test_set, x_test = digits
    model, _ = fit("linear", {"code_size": 8}, data, epochs=40, lr=3e-2)
    assert not any(isinstance(m, (torch.nn.ReLU, torch.nn.Sigmoid)) for m in model.modules())
    ours, pca = mse(model, x_test), metrics.pca_mse(train_set.x, test_set.x, 8)
    record_property("linear_over_pca", ours / pca)
    assert ours <= 1.05 * pca, f"linear AE test MSE {ours:.5f} vs PCA {pca:.5f}"


@pytest.mark.parametrize("kind", ["gaussian", "mask", "salt_pepper"])
def test_denoising_output_is_cleaner_than_its_input(kind, digits, record_property):
    data, _, _, x_test = digits
    model, _ = fit("denoising", {"corruption": kind, "noise": 0.3, "corrupt_fraction": 0.3}, data)
    g = torch.Generator().manual_seed(SEED + 1)
    noisy = corrupt(x_test, kind, std=0.3, fraction=0.3, generator=g)
    with torch.no_grad():
        out = model.reconstruct(noisy)
    # Compare with the corrupted input clipped to [0, 1]: already a (trivial) denoiser.
    before = metrics.psnr(noisy.clamp(0, 1), x_test)
    after = metrics.psnr(out, x_test)
    record_property(f"psnr_gain_{kind}", after - before)
    assert after > before + 1.0, (
        f"{kind}: PSNR {before:.2f} dB corrupted vs {after:.2f} dB denoised"
    )


def test_denoising_gaussian_noise_has_the_requested_mean_and_std():
    g = torch.Generator().manual_seed(SEED)
    x = torch.zeros(20000)
    eps = corrupt(x, "gaussian", std=0.2, mean=0.1, generator=g)
    assert abs(float(eps.mean()) - 0.1) < 0.01 and abs(float(eps.std()) - 0.2) < 0.01
    masked = corrupt(torch.ones(20000), "mask", fraction=0.3, generator=g)
    assert abs(float((masked == 0).float().mean()) - 0.3) < 0.02
    sp = corrupt(torch.full((20000,), 0.5), "salt_pepper", fraction=0.4, generator=g)
    assert abs(float((sp != 0.5).float().mean()) - 0.4) < 0.02 and set(sp.unique().tolist()) == {
        0.0,
        0.5,
        1.0,
    }


def test_sparse_mean_activation_near_target_with_overcomplete_code(digits, record_property):
    data, train_set, _, x_test = digits
    rho = 0.05
    model, _ = fit(
        "sparse", {"code_size": 100, "sparsity_target": rho, "kl_weight": 1.0}, data, epochs=15
    )
    with torch.no_grad():
        z = model.encode(x_test)
    assert z.shape[1] > x_test[0].numel()  # a code larger than the input
    mean_act = float(z.mean())
    quiet = float((z < 0.1).float().mean(dim=1).median())  # share of near-zero units per input
    record_property("mean_activation", mean_act)
    record_property("share_of_quiet_units", quiet)
    assert abs(mean_act - rho) < 0.02, f"mean activation {mean_act:.3f}, target {rho}"
    assert quiet > 0.75, f"only {quiet:.0%} of the units are near zero for a typical input"
    assert mse(model, x_test) < 0.7 * mean_image_mse(train_set, x_test)  # and it still reconstructs


def test_contractive_penalty_exact_form_matches_autograd():
    torch.manual_seed(SEED)
    model = get_model("contractive").build({"layers": 0, "code_size": 5}, (12,), "flat")
    x = torch.rand(4, 12)
    exact = model.jacobian_sq(x)
    auto = jacobian_frobenius_sq(model.encode, x)
    torch.testing.assert_close(exact, auto, rtol=1e-5, atol=1e-7)
    h = model.encode(x)
    torch.testing.assert_close(
        sigmoid_jacobian_sq(h, model.encoder[0].weight), auto, rtol=1e-5, atol=1e-7
    )


def test_deeper_contractive_encoder_trains_and_validates_with_its_autograd_penalty(digits):
    # A hidden layer takes the autograd path, which validation (under no_grad) must run too.
    data = digits[0]
    model, done = fit("contractive", {"layers": 1, "nodes": 32, "code_size": 4}, data, epochs=1)
    assert done.val_losses["contractive"] > 0
    x = torch.as_tensor(data.x[:8])
    with torch.no_grad():
        penalty = model.jacobian_sq(x)
    torch.testing.assert_close(penalty, jacobian_frobenius_sq(model.encode, x))
    assert not penalty.requires_grad


def test_contractive_lowers_the_jacobian_norm(digits, record_property):
    data, train_set, _, x_test = digits
    shape = {"layers": 0, "code_size": 16}
    cae, _ = fit("contractive", {**shape, "contractive_weight": 0.01}, data)
    plain, _ = fit("contractive", {**shape, "contractive_weight": 0.0}, data)
    j_cae = metrics.jacobian_norm(cae.encode, x_test[:200])
    j_plain = metrics.jacobian_norm(plain.encode, x_test[:200])
    record_property("jacobian_norm", j_cae)
    record_property("jacobian_norm_unregularised", j_plain)
    assert j_cae < 0.7 * j_plain, f"‖J‖_F {j_cae:.3f} contractive vs {j_plain:.3f} plain"
    assert mse(cae, x_test) < 0.8 * mean_image_mse(train_set, x_test)  # not a constant code


def test_overcomplete_does_not_learn_the_identity(digits):
    data, train_set, _, x_test = digits
    model, _ = fit("overcomplete", {"layers": 1, "code_size": 128}, data)
    assert model.code_shape[0] > x_test[0].numel()
    g = torch.Generator().manual_seed(SEED)
    noise = torch.rand(x_test.shape, generator=g)
    # The identity would copy noise as well as digits; a regularised code only fits the data.
    assert mse(model, noise) > 3 * mse(model, x_test)
    assert mse(model, x_test) < 0.5 * mean_image_mse(train_set, x_test)


def test_conv_matches_dense_with_fewer_weights_and_combines_noise_and_sparsity(
    digits, record_property
):
    data, train_set, _, x_test = digits
    conv, _ = fit("conv", {"code_size": 8}, data)
    dense, _ = fit("autoencoder", {"code_size": 8}, data)
    n_conv = sum(p.numel() for p in conv.parameters())
    n_dense = sum(p.numel() for p in dense.parameters())
    assert any(isinstance(m, torch.nn.Conv2d) for m in conv.modules())
    assert n_conv < n_dense / 3
    assert mse(conv, x_test) < 1.15 * mse(dense, x_test)
    combo, done = fit("conv", {"code_size": 32, "noise": 0.1, "kl_weight": 1.0}, data)
    assert "sparsity_kl" in done.losses
    with torch.no_grad():
        rate = float(combo.encode(x_test).mean())
    record_property("conv_sparse_mean_activation", rate)
    assert abs(rate - 0.05) < 0.03
    assert mse(combo, x_test) < 0.8 * mean_image_mse(train_set, x_test)


def test_vae_elbo_kl_and_prior_samples(digits, feature_net, record_property):
    data, _, _, x_test = digits
    model, done = fit("vae", {"code_size": 8}, data, epochs=20, lr=3e-3)
    elbo = done.val_losses["elbo"]
    record_property("test_elbo", elbo)
    assert np.isfinite(elbo) and elbo == pytest.approx(
        -(done.val_losses["reconstruction"] + done.val_losses["kl"])
    )
    assert done.val_losses["kl"] > 1.0, "the KL term collapsed: the code carries no information"
    q = quality(model, digits, feature_net)
    record_property("frechet", q.model)
    assert q.real < q.model < 0.5 * q.noise, q
    path = model.interpolate(x_test[0], x_test[1], steps=5)
    assert path.shape == (5, *x_test.shape[1:])
    with torch.no_grad():
        ends = model.reconstruct(x_test[:2])
    torch.testing.assert_close(path[[0, -1]], ends)


def test_vae_kl_warmup_ramps_beta_and_keeps_more_in_the_code(digits, record_property):
    # Free bits off: this test is about the warm-up alone (free bits change the trained KL term).
    model = get_model("vae").build(
        {"beta": 2.0, "kl_warmup_steps": 10, "free_bits": 0.0}, (1, 8, 8), "image"
    )
    model.train()
    weights = []
    for step in (0, 4, 9, 10, 500):
        model.global_step = step
        weights.append(model.kl_weight())
    assert weights == pytest.approx([0.2, 1.0, 2.0, 2.0, 2.0])
    model.global_step = 0
    terms = model.training_step({"x": torch.rand(8, 1, 8, 8)}, "model")
    torch.testing.assert_close(terms["loss"], terms["reconstruction"] + 0.2 * terms["kl"])
    model.eval()
    assert model.kl_weight() == 2.0  # validation reports the objective itself

    data = digits[0]
    # β = 2 and free bits off: there the plain VAE's code collapses (KL ~0.06 nats); at β = 1
    # the narrow initial posteriors already keep it from collapsing, warm-up or not.
    plain_params = {"beta": 2.0, "free_bits": 0.0}
    _, plain = fit("vae", plain_params, data, epochs=15, lr=5e-3)
    _, warm = fit("vae", {**plain_params, "kl_warmup_steps": 200}, data, epochs=15, lr=5e-3)
    record_property("kl_plain", plain.val_losses["kl"])
    record_property("kl_warmup", warm.val_losses["kl"])
    assert warm.val_losses["kl"] > 1.2 * plain.val_losses["kl"]
    assert warm.val_losses["elbo"] > plain.val_losses["elbo"]


@pytest.mark.parametrize(("model_id", "epochs"), [("gan", 20), ("dcgan", 10)])
def test_gan_trainer_drives_both_players(model_id, epochs, digits, feature_net, record_property):
    data, _, _, _ = digits
    torch.manual_seed(SEED)
    start = get_model(model_id).build({}, data.sample_shape, data.kind).state_dict()
    model, done = fit(model_id, {}, data, epochs=epochs)
    assert model.steps == ("discriminator", "generator")
    assert {"discriminator", "generator"} <= set(done.losses)
    end = model.state_dict()
    for part in ("generator", "discriminator"):
        assert any(not torch.equal(start[k], end[k]) for k in end if k.startswith(part)), part
    q = quality(model, digits, feature_net)
    record_property(f"frechet_{model_id}", q.model)
    assert q.model < 0.5 * q.noise, q


def test_aae_codes_follow_the_prior_and_samples_look_like_data(
    digits, feature_net, record_property
):
    data, _, _, x_test = digits
    model, done = fit("aae", {"code_size": 8}, data, epochs=10)
    assert set(model.steps) == {"reconstruction", "discriminator", "generator"}
    with torch.no_grad():
        z = model.encode(x_test)
    assert float(z.mean(0).abs().mean()) < 0.3 and 0.6 < float(z.std(0).mean()) < 1.5
    q = quality(model, digits, feature_net)
    record_property("frechet", q.model)
    assert q.real < q.model < 0.5 * q.noise, q


def test_cvae_generates_the_requested_class(digits, feature_net, record_property):
    data, _, _, _ = digits
    model, done = fit("cvae", {"code_size": 8}, data, epochs=10)
    wanted = torch.arange(200) % 10
    samples = model.sample(200, generator=torch.Generator().manual_seed(SEED), labels=wanted)
    with torch.no_grad():
        predicted = feature_net(samples).argmax(1)
    accuracy = float((predicted == wanted).float().mean())
    record_property("cvae_class_accuracy", accuracy)
    assert accuracy > 0.8, f"only {accuracy:.0%} of conditional samples show the requested digit"
    x = torch.as_tensor(data.x[:2])
    path = model.interpolate(x[0], x[1], steps=4, y1=3, y2=7)
    with torch.no_grad():
        ends = feature_net(path[[0, -1]]).argmax(1).tolist()
    assert path.shape == (4, *x.shape[1:]) and ends == [3, 7]


def test_metrics_on_known_cases():
    rng = np.random.default_rng(SEED)
    a = rng.normal(size=(500, 4))
    assert abs(metrics.frechet_distance(a, a)) < 1e-6
    assert metrics.frechet_distance(a, a + 1.0) == pytest.approx(4.0, abs=1e-6)  # ‖Δμ‖² only
    scaled = metrics.frechet_distance(a, 2 * a)  # mean ×2, covariance ×4: tr(C)·(1 + 4 − 2·2)
    expected = (a.mean(0) ** 2).sum() + np.trace(np.cov(a, rowvar=False))
    assert scaled == pytest.approx(expected, rel=1e-6)
    x = torch.rand(10, 64)
    assert metrics.psnr(x + 0.1, x) == pytest.approx(20.0, abs=1e-4)
    lin = torch.nn.Linear(6, 3)
    assert metrics.jacobian_norm(lin, torch.rand(5, 6)) == pytest.approx(
        float(lin.weight.detach().norm()), rel=1e-5
    )
    assert metrics.pca_mse(a, a, 4) < 1e-20
