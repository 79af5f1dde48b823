"""The torch-free runtime: loads exports, matches torch, checks its input, picks a provider."""

from __future__ import annotations

import json
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from aelab import runtime, windowing
from aelab.errors import AelabError
from aelab.export import export_model
from aelab.models import GraphSpec
from aelab.plugins import get_model

SCALING = {"method": "divide", "scale": 16.0}
META = {"name": "digits", "kind": "image", "sample_shape": [1, 8, 8], "scaling": SCALING}
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def ae(tmp_path_factory):
    """An untrained autoencoder (seeded) and its full export."""
    spec = get_model("autoencoder")
    torch.manual_seed(0)
    model = spec.build({"code_size": 4}, (1, 8, 8), "image").eval()
    folder = tmp_path_factory.mktemp("ae") / "export"
    export_model(model, spec, model.params, run_id="ae", data_meta=META, out_dir=folder)
    return model, folder


class _Encoder(nn.Module):
    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return x[:, :2] * 3.0, x[:, 2:] - 1.0


class _Generator(nn.Module):
    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(torch.cat([z, -z], dim=1))


class _Gen(nn.Module):
    """A model declaring a two-output encoder and a GAN-style generator."""

    sample_shape = (4,)

    def __init__(self) -> None:
        super().__init__()
        self.enc, self.gen = _Encoder(), _Generator()

    def graphs(self) -> list[GraphSpec]:
        return [
            GraphSpec("encoder", self.enc, "input", (4,), ["mean", "logvar"]),
            GraphSpec("generator", self.gen, "noise", (2,), ["sample"], None, prior="normal"),
        ]


@pytest.fixture(scope="module")
def gen_export(tmp_path_factory):
    folder = tmp_path_factory.mktemp("gen") / "export"
    spec = types.SimpleNamespace(id="fakegan", name="Fake GAN")
    meta = {"kind": "flat", "sample_shape": [4], "scaling": {"method": "none"}}
    export_model(_Gen(), spec, {}, run_id="g", data_meta=meta, out_dir=folder)
    return folder


def _digits(n: int = 5, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((n, 1, 8, 8), dtype=np.float32)


def test_verbs_match_torch(ae):
    model, folder = ae
    m = runtime.load(folder, provider="cpu")
    assert m.graphs == ["autoencoder", "encoder", "decoder"]
    assert m.input_shape("decoder") == (4,)
    x = _digits()
    with torch.inference_mode():
        xt = torch.from_numpy(x)
        want_rec, want_code = model.reconstruct(xt).numpy(), model.encode(xt).numpy()
        z = np.random.default_rng(1).standard_normal((3, 4), dtype=np.float32)
        want_dec = model.decode(torch.from_numpy(z)).numpy()
    np.testing.assert_allclose(m.reconstruct(x), want_rec, atol=1e-4)
    np.testing.assert_allclose(m.encode(x), want_code, atol=1e-4)
    np.testing.assert_allclose(m.decode(z), want_dec, atol=1e-4)
    assert set(m.run("autoencoder", x)) == {"reconstruction"}


@pytest.fixture(scope="module")
def vae(tmp_path_factory):
    """An untrained VAE (seeded) and its full export: its decoder has a prior."""
    spec = get_model("vae")
    torch.manual_seed(0)
    model = spec.build({"code_size": 4}, (1, 8, 8), "image").eval()
    folder = tmp_path_factory.mktemp("vae") / "export"
    export_model(model, spec, model.params, run_id="vae", data_meta=META, out_dir=folder)
    return model, folder


def test_sample_is_seeded(vae):
    m = runtime.load(vae[1])
    a, b, c = m.sample(6, seed=3), m.sample(6, seed=3), m.sample(6, seed=4)
    assert a.shape == (6, 1, 8, 8) and a.dtype == np.float32
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)
    with pytest.raises(runtime.RuntimeInputError, match="at least 1"):
        m.sample(0)


def test_preprocess_scales_raw_values_and_reshapes(ae):
    m = runtime.load(ae[1])
    x = _digits(4)
    raw = np.round(x * 16.0)  # digits' raw values run 0..16
    expected = m.reconstruct(raw / 16.0)
    np.testing.assert_allclose(m.reconstruct(raw, preprocess=True), expected, atol=1e-6)
    np.testing.assert_allclose(
        m.reconstruct(raw[:, 0].astype(np.int64), preprocess=True), expected, atol=1e-6
    )
    np.testing.assert_allclose(
        m.reconstruct(raw.reshape(4, 64), preprocess=True), expected, atol=1e-6
    )
    assert m.reconstruct(x[0, 0]).shape == (1, 1, 8, 8)  # one (H, W) image


@pytest.mark.parametrize(
    "x, match",
    [
        (
            np.zeros((2, 7, 7), np.float32),
            r"shape \(N, 1, 8, 8\).*got an array of shape \(2, 7, 7\)",
        ),
        (np.zeros((2, 1, 8, 8), np.int64), "expects float32 values"),
        (np.full((2, 1, 8, 8), 3.0, np.float32), r"values in \[0, 1\]"),
        (np.full((2, 1, 8, 8), np.nan, np.float32), "NaN"),
        (np.array(["a", "b"], dtype=object), "dtype object"),
    ],
)
def test_bad_input_gets_one_sentence(ae, x, match):
    m = runtime.load(ae[1])
    with pytest.raises(runtime.RuntimeInputError, match=match) as info:
        m.reconstruct(x)
    message = str(info.value)
    assert isinstance(info.value, ValueError) and isinstance(info.value, AelabError)
    assert message.endswith(".") and "\n" not in message and message.count(". ") == 0


def test_unknown_graph_names_the_graphs(ae):
    m = runtime.load(ae[1])
    with pytest.raises(
        runtime.RuntimeInputError,
        match="no graph 'generator'; it has: autoencoder, encoder, decoder",
    ):
        m.run("generator", np.zeros((1, 2), np.float32))


def test_single_file_describes_itself(ae):
    m = runtime.load(ae[1] / "encoder.onnx")
    assert m.graphs == ["encoder"]
    assert m.manifest["model"] == "autoencoder" and m.manifest["params"]["code_size"] == 4
    assert m.manifest["graphs"][0]["input"]["preprocessing"]["scaling"] == SCALING
    assert m.encode(_digits(2)).shape == (2, 4)
    with pytest.raises(runtime.RuntimeInputError, match="cannot reconstruct"):
        m.reconstruct(_digits(2))


def test_altered_or_missing_exports_are_refused(ae, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(ae[1], copy)
    with open(copy / "decoder.onnx", "ab") as fh:
        fh.write(b"\0")
    with pytest.raises(runtime.RuntimeLoadError, match="sha256"):
        runtime.load(copy)
    with pytest.raises(runtime.RuntimeLoadError, match="No export"):
        runtime.load(tmp_path / "nothing")
    with pytest.raises(runtime.RuntimeLoadError, match="no manifest.json"):
        runtime.load(tmp_path)


@pytest.mark.parametrize(
    "field, value, reason",
    [
        ("file", "../../x.onnx", "path separator"),
        ("file", "/tmp/x.onnx", "path separator"),
        ("file", "..\\..\\x.onnx", "path separator"),  # a separator on Windows
        ("file", ".hidden.onnx", "starts with '.'"),
        ("file", "encoder.onnx\n", "ends with a newline"),
        ("file", "encoder.txt", "not an .onnx file"),
        ("name", "../encoder", "path separator"),
    ],
)
def test_manifest_names_only_plain_files_inside_its_folder(ae, tmp_path, field, value, reason):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(ae[1], copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["graphs"][0][field] = value
    (copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(runtime.RuntimeLoadError, match="not allowed|not a plain file") as err:
        runtime.load(copy)
    assert reason in str(err.value) and "\n" not in str(err.value)


def test_multiple_outputs_and_generator(gen_export):
    m = runtime.load(gen_export)
    x = np.linspace(0, 1, 8, dtype=np.float32).reshape(2, 4)
    outs = m.run("encoder", x)
    assert list(outs) == ["mean", "logvar"]
    np.testing.assert_allclose(outs["mean"], x[:, :2] * 3.0, atol=1e-6)
    np.testing.assert_allclose(m.encode(x), outs["mean"])  # encode gives the first output
    s = m.sample(5, seed=1)
    z = np.random.default_rng(1).standard_normal((5, 2), dtype=np.float32)
    np.testing.assert_allclose(s, 1 / (1 + np.exp(-np.concatenate([z, -z], axis=1))), atol=1e-6)


def test_provider_choice(ae):
    assert runtime.load(ae[1], provider="cpu").provider == "CPUExecutionProvider"
    assert runtime.load(ae[1]).provider == runtime.available_providers()[0]
    with pytest.raises(runtime.RuntimeInputError, match="'auto', 'cpu' or 'cuda'"):
        runtime.load(ae[1], provider="tpu")
    if not runtime.cuda_works():
        assert runtime.available_providers() == ["CPUExecutionProvider"]
        with pytest.raises(runtime.RuntimeLoadError, match="CUDA provider was asked for"):
            runtime.load(ae[1], provider="cuda")


def test_session_options_are_the_documented_ones():
    import onnxruntime as ort

    opts = runtime.session_options()
    assert opts.graph_optimization_level == ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    assert opts.execution_mode == ort.ExecutionMode.ORT_SEQUENTIAL
    assert opts.inter_op_num_threads == 1 and opts.intra_op_num_threads >= 1
    assert runtime.session_options(2).intra_op_num_threads == 2


def _python(code: str, *args: str, extra_path: str | None = None) -> subprocess.CompletedProcess:
    env_path = [extra_path] if extra_path else []
    prelude = f"import sys; sys.path[:0] = {env_path!r}; sys.argv[1:] = {list(args)!r}\n"
    return subprocess.run(
        [sys.executable, "-c", prelude + code],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )


def test_import_leaves_torch_and_onnx_unimported_and_probe_is_quiet():
    proc = _python(
        "import json, aelab.runtime as rt\n"
        "providers = rt.available_providers()\n"
        "print(json.dumps({'heavy': sorted(m for m in ('torch', 'onnx', 'pydantic', 'pluggy', 'PIL')"
        " if m in sys.modules), 'providers': providers}))"
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["heavy"] == []
    assert out["providers"][-1] == "CPUExecutionProvider"
    # onnxruntime-gpu without CUDA libraries would log 'Failed to load library'; the probe must not.
    assert proc.stderr == ""


def test_runs_where_torch_cannot_be_imported(ae, tmp_path):
    model, folder = ae
    poison = tmp_path / "poison" / "torch"
    poison.mkdir(parents=True)
    (poison / "__init__.py").write_text("raise ImportError('torch is not available here')\n")
    x = _digits(3, seed=7)
    np.save(tmp_path / "x.npy", x)
    proc = _python(
        "import numpy as np\n"
        "try:\n    import torch\n    sys.exit('torch imported')\nexcept ImportError:\n    pass\n"
        "import aelab.runtime as rt\n"
        "m = rt.load(sys.argv[1])\n"
        "np.save(sys.argv[3], m.reconstruct(np.load(sys.argv[2])))\n"
        "print(m.provider)",
        str(folder),
        str(tmp_path / "x.npy"),
        str(tmp_path / "y.npy"),
        extra_path=str(tmp_path / "poison"),
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() in ("CPUExecutionProvider", "CUDAExecutionProvider")
    with torch.inference_mode():
        want = model.reconstruct(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(np.load(tmp_path / "y.npy"), want, atol=1e-4)


def test_conditional_decoder_is_not_filled_with_noise(tmp_path):
    spec = get_model("cvae")
    torch.manual_seed(0)
    model = spec.build({}, (1, 8, 8), "image").eval()
    export_model(model, spec, model.params, run_id="cvae", data_meta=META, out_dir=tmp_path / "e")
    m = runtime.load(tmp_path / "e")
    entry = next(g for g in m.manifest["graphs"] if g["name"] == "decoder")
    assert "one-hot label" in entry["input"]["distribution"]
    with pytest.raises(runtime.RuntimeInputError, match="takes a latent code .* one-hot label"):
        m.sample(4)
    z = np.zeros((2, *m.input_shape("decoder")), np.float32)
    z[:, -1] = 1.0  # class 9, zero code: the caller builds the layout the manifest describes
    assert m.run("decoder", z)["output"].shape == (2, 1, 8, 8)


# -- time series -------------------------------------------------------------------------------

SERIES = {"window": 16, "stride": 5, "scaling": "window", "channels": ["a", "b"], "n_steps": 90}


@pytest.fixture(scope="module")
def series_export(tmp_path_factory):
    """An untrained conv1d (seeded) for windows of 2 channels × 16 steps, scaled per window."""
    spec = get_model("conv1d")
    torch.manual_seed(0)
    model = spec.build({"code_size": 4, "nodes": 4}, (2, 16), "flat").eval()
    meta = {
        "name": "s.csv",
        "kind": "flat",
        "sample_shape": [2, 16],
        "scaling": {"method": "window_minmax"},
        "series": SERIES,
    }
    folder = tmp_path_factory.mktemp("series") / "export"
    export_model(model, spec, model.params, run_id="s", data_meta=meta, out_dir=folder)
    return model, folder


def _series(n_steps: int = 90, channels: int = 2) -> np.ndarray:
    t = np.arange(n_steps)[:, None]
    return 50 + 20 * np.sin(t / (3.0 + np.arange(channels))) + t  # (T, C), not in [0, 1]


def test_series_windows_cut_and_scale_like_training(series_export):
    _, folder = series_export
    m = runtime.load(folder, provider="cpu")
    assert m.series_record()["window"] == 16 and m.series_record()["channels"] == ["a", "b"]
    values = _series()
    windows, starts = m.series_windows(values)
    assert starts.tolist() == [*range(0, 75, 5), 74] and windows.shape == (16, 2, 16)
    raw, same_starts = windowing.window_series(values, 16, 5)
    np.testing.assert_array_equal(starts, same_starts)
    lo, hi = raw.min(axis=2, keepdims=True), raw.max(axis=2, keepdims=True)
    np.testing.assert_allclose(windows, (raw - lo) / (hi - lo), atol=1e-6)
    # preprocess=True on raw windows applies the same per-window scaling.
    np.testing.assert_allclose(m.reconstruct(raw, preprocess=True), m.reconstruct(windows))


def test_series_reconstruction_matches_torch_on_the_time_axis(series_export):
    model, folder = series_export
    m = runtime.load(folder, provider="cpu")
    values = _series()
    out = m.reconstruct_series(values)
    windows, starts = m.series_windows(values)
    with torch.inference_mode():
        want = model.reconstruct(torch.from_numpy(windows)).numpy()
    raw = windowing.cut_windows(values, starts, 16)
    lo, hi = raw.min(axis=2, keepdims=True), raw.max(axis=2, keepdims=True)
    expected = windowing.overlap_average(lo + want * (hi - lo), starts, 90)
    np.testing.assert_allclose(out["reconstruction"], expected, rtol=1e-4, atol=1e-3)
    assert out["error"].shape == (90,) and out["window_error"].shape == (16,)
    np.testing.assert_allclose(out["window_error"], ((want - windows) ** 2).mean(axis=(1, 2)), 1e-4)


@pytest.mark.parametrize(
    ("values", "match"),
    [
        (_series(channels=3), "3 channel\\(s\\) but the model was trained on 2"),
        (_series(10), "window of 16 time steps is longer than the series, which has 10"),
        (np.array([["a", "b"]] * 20), "must hold numbers"),
        (np.full((20, 2), np.nan), "NaN"),
    ],
)
def test_bad_series_gets_one_sentence(series_export, values, match):
    m = runtime.load(series_export[1], provider="cpu")
    with pytest.raises(runtime.RuntimeInputError, match=match) as exc_info:
        m.series_windows(values)
    assert "\n" not in str(exc_info.value) and str(exc_info.value).endswith(".")


def test_an_export_of_other_data_cannot_cut_a_series(ae):
    with pytest.raises(runtime.RuntimeInputError, match="not trained on windows of a time series"):
        runtime.load(ae[1], provider="cpu").series_windows(_series())
