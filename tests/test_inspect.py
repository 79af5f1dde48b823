"""aelab.inspect: architecture summaries, latent maps, interpolation, samples, PCA and grids."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from aelab import inspect as ins
from aelab.plugins import get_model, get_models

SHAPE = (1, 8, 8)


@pytest.fixture
def model():
    """A small seeded undercomplete autoencoder for 8×8 images."""
    torch.manual_seed(0)
    spec = get_model("autoencoder")
    return spec.build({"code_size": 3, "layers": 1, "nodes": 16}, SHAPE, "image").eval()


@pytest.fixture
def x():
    return np.random.default_rng(0).random((12, *SHAPE), dtype=np.float32)


def test_architecture_lists_layers_and_counts_parameters(model):
    arch = ins.architecture(model)
    assert [size for _, size, _ in arch.layers] == ["64 → 16", "16 → 3", "3 → 16", "16 → 64"]
    assert arch.n_params == sum(p.numel() for p in model.parameters())
    assert sum(n for _, _, n in arch.layers) == arch.n_params
    assert (arch.input_size, arch.code_size, arch.completeness) == (64, 3, "undercomplete")
    md = arch.markdown()
    assert "undercomplete" in md and f"{arch.n_params:,} parameters" in md


def test_architecture_says_overcomplete_when_the_code_is_wider():
    class Wide(torch.nn.Module):
        sample_shape, code_shape = (3,), (4,)

        def __init__(self):
            super().__init__()
            self.encoder = torch.nn.Linear(3, 4)

    arch = ins.architecture(Wide())
    assert arch.completeness == "overcomplete" and arch.layers[0][1] == "3 → 4"
    assert "overcomplete" in arch.markdown()


def test_project_is_direct_for_two_units_and_pca_above():
    rng = np.random.default_rng(1)
    codes2 = rng.normal(size=(20, 2)).astype(np.float32)
    direct = ins.project(codes2)
    assert direct.method == "direct"
    np.testing.assert_allclose(direct.xy, codes2)
    codes5 = rng.normal(size=(40, 5)) * np.array([5.0, 3.0, 0.1, 0.1, 0.1])
    pca = ins.project(codes5)
    assert pca.method == "pca" and pca.xy.shape == (40, 2)
    assert 0.95 < pca.explained <= 1.0  # the two wide axes hold nearly all the variance


def test_project_tsne_on_request():
    codes = np.random.default_rng(2).normal(size=(30, 4))
    out = ins.project(codes, "tsne", seed=0)
    assert out.method == "tsne" and out.xy.shape == (30, 2) and np.isfinite(out.xy).all()


def test_latent_map_carries_labels(model, x):
    labels = np.arange(len(x)) % 3
    proj = ins.latent_map(model, x, labels)
    assert proj.xy.shape == (len(x), 2) and proj.method == "pca"
    np.testing.assert_array_equal(proj.labels, labels)


def test_interpolation_ends_at_the_two_reconstructions(model, x):
    path = ins.interpolate(model, x[0], x[1], steps=5)
    assert path.shape == (5, *SHAPE)
    ends = ins.reconstruct(model, x[:2])
    np.testing.assert_allclose(path[0], ends[0], atol=1e-5)
    np.testing.assert_allclose(path[-1], ends[1], atol=1e-5)
    with pytest.raises(ValueError):
        ins.interpolate(model, x[0], x[1], steps=1)


def test_samples_are_seeded():
    if "vae" not in get_models():
        pytest.skip("no VAE plugin registered")
    spec = get_model("vae")
    torch.manual_seed(0)
    vae = spec.build({"code_size": 2, "layers": 1, "nodes": 8}, SHAPE, "image")
    a, b, c = ins.samples(vae, 4, seed=1), ins.samples(vae, 4, seed=1), ins.samples(vae, 4, seed=2)
    assert a.shape == (4, *SHAPE)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_pca_baseline_is_exact_with_every_component(x):
    full = ins.pca_baseline(x, x, 64)
    assert full.mse < 1e-10 and full.reconstructions.shape == x.shape
    one = ins.pca_baseline(x, x, 1)
    assert one.components == 1 and one.mse > full.mse
    # More components than samples is capped, not an error.
    assert ins.pca_baseline(x[:5], x, 50).components == 5


def test_corrupt_is_seeded_and_leaves_the_global_rng_alone():
    spec = get_model("autoencoder")
    torch.manual_seed(0)
    noisy_model = spec.build({"code_size": 2, "layers": 0, "noise": 0.3}, SHAPE, "image")
    x = np.full((2, *SHAPE), 0.5, np.float32)
    state = torch.get_rng_state()
    a, b = ins.corrupt(noisy_model, x, seed=3), ins.corrupt(noisy_model, x, seed=3)
    assert torch.equal(state, torch.get_rng_state())
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, x) and a.min() >= 0 and a.max() <= 1
    clean = spec.build({"code_size": 2, "layers": 0}, SHAPE, "image")
    assert ins.corrupt(clean, x) is None


def test_image_grid_places_tiles_and_labels():
    white = np.ones((3, *SHAPE), np.float32)
    black = np.zeros((2, *SHAPE), np.float32)
    img = ins.image_grid([white, black], cell=16, pad=2)
    assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3
    assert img.shape == (2 * (16 + 2) + 2, 3 * (16 + 2) + 2, 3)
    assert (img[2:18, 2:18] == 255).all()  # first white tile
    assert (img[20:36, 2:18] == 0).all()  # first black tile
    labelled = ins.image_grid([white, black], ["original", "reconstructed"], cell=16)
    assert labelled.shape[0] == img.shape[0] and labelled.shape[1] > img.shape[1]


def test_image_grid_draws_flat_vectors_as_line_charts_and_rgb_as_tiles():
    x = np.linspace(0, 1, 6, dtype=np.float32)[None]
    one = ins.image_grid([x], ["original"])
    two = ins.image_grid([x, x[:, ::-1]], ["original", "reconstructed"])
    assert one.shape == two.shape and one.shape[0] > 100  # a chart, not a strip of 1-pixel tiles
    # The second series is drawn in its own colour (the palette's orange) in the same panel.
    orange = np.all(two == (230, 97, 1), axis=-1).sum()
    assert orange > 50 and np.all(one == (230, 97, 1), axis=-1).sum() < orange / 5
    rgb = ins.image_grid([np.zeros((1, 3, 4, 4), np.float32)], cell=4, pad=0)
    assert rgb.shape == (4, 4, 3)


def test_reconstruction_grid_adds_a_corrupted_row_only_with_noise(model, x):
    two = ins.reconstruction_grid(model, x[:4], cell=16)
    spec = get_model("autoencoder")
    noisy = spec.build({"code_size": 3, "layers": 1, "nodes": 16, "noise": 0.2}, SHAPE, "image")
    three = ins.reconstruction_grid(noisy, x[:4], cell=16)
    assert (two.shape[0] - 2) * 3 == (three.shape[0] - 2) * 2  # 2 rows versus 3 rows


def test_architecture_of_a_pure_generator_makes_no_compression_claim():
    class Generator(torch.nn.Module):
        sample_shape, code_shape = (64,), (16,)
        capabilities = frozenset({"decode", "sample"})

        def __init__(self):
            super().__init__()
            self.generator = torch.nn.Linear(16, 64)

    arch = ins.architecture(Generator())
    assert arch.completeness == "generator"
    assert "undercomplete" not in arch.markdown() and "does not apply" in arch.markdown()


def test_the_summary_and_the_pca_comparison_read_what_the_code_is():
    """A sparse code is described as sparse, and compared with PCA at the units it uses."""
    from aelab.data import load_data
    from aelab.train import Trainer
    from aelab.ui import views
    from aelab.ui.session import LabSession

    data = load_data("digits")
    trainer = Trainer(get_model("sparse"), {"code_size": 32}, data, {"epochs": 3}, save=False)
    done = trainer.fit()
    text = ins.architecture(done.model).markdown()
    assert "**sparse** code of 32 units" in text and "the sparsity, not the number" in text
    plain = ins.architecture(get_model("autoencoder").build({}, (1, 8, 8), "image")).markdown()
    assert "sparse" not in plain and "undercomplete" in plain
    session = LabSession(
        spec=trainer.spec, params=trainer.params, config=trainer.config, model=done.model, data=data
    )
    _img, caption = views.pca_comparison(session)
    row = next(line for line in caption.splitlines() if "units in use" in line)
    active = float(row.split("(")[1].split()[0])
    assert 0 < active < 32 and f"| {max(1, round(active))} |" in row
