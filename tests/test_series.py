"""Time series: windows, scalings, overlap-add, the sensors series, runs, exports and conv1d."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pytest
from filekit import one_sentence

from aelab import builtin_datasets, runtime, testing, windowing
from aelab.data import Dataset, load_data, load_run_data
from aelab.errors import DataError
from aelab.export import export_run
from aelab.plugins import get_models
from aelab.runs import load_run
from aelab.series import (
    SeriesOptions,
    add_series_arguments,
    coerce_options,
    is_series,
    options_from_args,
    reconstruct_series,
)
from aelab.train import train

# -- helpers ---------------------------------------------------------------------------------


def wave(n_steps: int = 200, seed: int = 0) -> np.ndarray:
    """Two seeded noisy channels of different periods and units, (T, 2)."""
    rng = np.random.default_rng(seed)
    t = np.arange(n_steps, dtype=np.float64)
    return np.stack(
        [10 + 3 * np.sin(2 * np.pi * t / 25), 1000 * np.cos(2 * np.pi * t / 40)], axis=1
    ) + rng.normal(0, [0.1, 5.0], size=(n_steps, 2))


def write_csv(path: Path, values: np.ndarray, time: bool = True, labels=None) -> Path:
    header = (
        (["date"] if time else []) + ["temp", "load"] + (["label"] if labels is not None else [])
    )
    lines = [",".join(header)]
    for i, row in enumerate(values):
        cells = [f"2024-01-{1 + i // 24:02d}T{i % 24:02d}:00"] if time else []
        cells += [repr(float(v)) for v in row]
        cells += [str(int(labels[i]))] if labels is not None else []
        lines.append(",".join(cells))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


# -- cutting ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("n_steps", "window", "stride", "starts"),
    [
        (100, 10, 10, list(range(0, 91, 10))),  # the strides end exactly at the last step
        (100, 10, 7, [*range(0, 85, 7), 90]),  # a tail: one more window ending at the end
        (20, 20, 5, [0]),
        (12, 4, 1, list(range(9))),
    ],
)
def test_window_starts_and_counts(n_steps, window, stride, starts):
    got = windowing.window_starts(n_steps, window, stride)
    assert got.tolist() == starts
    covered = np.zeros(n_steps, bool)
    for s in got:
        covered[s : s + window] = True
    assert covered.all()  # every step lies in some window


def test_cut_windows_are_the_series_slices():
    values = wave(50)
    starts = windowing.window_starts(50, 8, 3)
    windows = windowing.cut_windows(values, starts, 8)
    assert windows.shape == (len(starts), 2, 8)
    for w, s in zip(windows, starts):
        np.testing.assert_array_equal(w, values[s : s + 8].T)


def test_global_scaling_is_per_channel_over_the_whole_series(tmp_path):
    values = wave()
    data = load_data(write_csv(tmp_path / "s.csv", values), series={"window": 20, "stride": 5})
    assert data.kind == "flat" and data.sample_shape == (2, 20) and is_series(data)
    assert data.feature_names == ["temp", "load"] and data.series.channels == ["temp", "load"]
    for c in range(2):  # each channel spans [0, 1] over the series, whatever its units
        assert data.x[:, c].min() == 0.0 and data.x[:, c].max() == 1.0
    lo = values.min(0)[:, None]
    span = (values.max(0) - values.min(0))[:, None]
    np.testing.assert_allclose(data.x[3] * span + lo, values[15:35].T, rtol=1e-6, atol=1e-4)
    assert data.scaling["method"] == "minmax" and np.shape(data.scaling["min"]) == (2, 1)


def test_window_scaling_scales_each_window_on_its_own(tmp_path):
    values = wave()
    data = load_data(
        write_csv(tmp_path / "s.csv", values),
        series={"window": 20, "stride": 5, "scaling": "window"},
    )
    assert data.scaling == {"method": windowing.WINDOW_METHOD}
    np.testing.assert_allclose(data.x.min(axis=2), 0.0, atol=1e-7)
    np.testing.assert_allclose(data.x.max(axis=2), 1.0, atol=1e-6)
    raw = values[15:35].T
    expected = (raw - raw.min(1, keepdims=True)) / np.ptp(raw, axis=1, keepdims=True)
    np.testing.assert_allclose(data.x[3], expected, atol=1e-6)


@pytest.mark.parametrize("scaling", ["global", "window"])
def test_overlap_add_of_perfect_reconstructions_gives_the_series_back(tmp_path, scaling):
    values = wave(203)  # a stride that leaves a tail, so the last window overlaps unevenly
    data = load_data(
        write_csv(tmp_path / "s.csv", values),
        series=SeriesOptions(window=16, stride=6, scaling=scaling),
    )
    info = data.series
    raw = windowing.cut_windows(info.values, info.starts, info.window)
    np.testing.assert_allclose(windowing.overlap_average(raw, info.starts, 203), values, rtol=1e-12)
    # The windows themselves as "reconstructions": the series comes back, with zero error.
    back = windowing.put_back(data.x, data.x, raw, info.starts, info.n_steps, data.scaling)
    np.testing.assert_allclose(back["reconstruction"], values, rtol=1e-6, atol=1e-3)
    assert not back["error"].any() and back["error"].shape == (203,)
    # A reconstruction off by 0.1 everywhere: 0.01 squared error at every step and window.
    back = windowing.put_back(data.x + 0.1, data.x, raw, info.starts, 203, data.scaling)
    np.testing.assert_allclose(back["error"], 0.01, rtol=1e-5)
    np.testing.assert_allclose(back["window_error"], 0.01, rtol=1e-5)


def test_uncovered_steps_are_nan_and_a_subset_keeps_its_windows(tmp_path):
    data = load_data(write_csv(tmp_path / "s.csv", wave(100)), series={"window": 10, "stride": 10})
    part = data.subset([0, 2])
    assert part.series.starts.tolist() == [0, 20] and part.feature_names == ["temp", "load"]
    raw = windowing.cut_windows(part.series.values, part.series.starts, 10)
    avg = windowing.overlap_average(raw, part.series.starts, 100)
    assert np.isnan(avg[10:20]).all() and not np.isnan(avg[:10]).any()


# -- reading ---------------------------------------------------------------------------------


def test_csv_time_and_label_columns(tmp_path):
    values = wave(120)
    labels = np.zeros(120, int)
    labels[50:53] = 1
    data = load_data(
        write_csv(tmp_path / "s.csv", values, labels=labels), series={"window": 10, "stride": 5}
    )
    info = data.series
    assert info.time_column == "date" and info.time[0] == "2024-01-01T00:00"
    assert info.label_column == "label" and data.label_names == ["normal", "anomaly"]
    expected = [int(labels[s : s + 10].max()) for s in info.starts]
    assert data.labels.tolist() == expected and sum(expected) == 2  # the windows at 45 and 50
    # No header: a non-numeric first column is still the time axis.
    lines = (tmp_path / "s.csv").read_text().splitlines()[1:]
    (tmp_path / "bare.csv").write_text("\n".join(line.rsplit(",", 1)[0] for line in lines))
    bare = load_data(tmp_path / "bare.csv", series=True)
    assert bare.sample_shape == (2, 64) and bare.feature_names == ["channel 2", "channel 3"]
    assert bare.series.time[1] == "2024-01-01T01:00" and bare.series.stride == 8


def test_explicit_time_column_and_npy_series(tmp_path):
    values = wave(80)
    path = tmp_path / "s.csv"
    path.write_text(
        "step,temp,load\n" + "\n".join(f"{i},{a},{b}" for i, (a, b) in enumerate(values))
    )
    data = load_data(path, series={"window": 8, "time_column": "step"})
    assert data.sample_shape == (2, 8) and data.series.time[-1] == "79"
    np.save(tmp_path / "one.npy", values[:, 0])
    single = load_data(tmp_path / "one.npy", series={"window": 8, "stride": 4})
    assert single.sample_shape == (1, 8) and len(single) == 19


@pytest.mark.parametrize(
    ("content", "options", "fragments"),
    [
        ("temp\n1\n2\n3\n4\n", {"window": 10}, ["s.csv", "longer than the series", "4"]),
        ("temp\n1\n2\n3\n4\n", {"window": 2, "stride": 0}, ["stride", "at least 1", "0"]),
        ("temp\n1\n2\n3\n4\n", {"window": 1}, ["window", "at least 2"]),
        ("temp\n1\n2\n3\n4\n", {"window": 4}, ["only one window", "shorter window"]),
        ("temp\n1\n2\n3\n4\n", {"scaling": "zscore"}, ["'global' or 'window'", "zscore"]),
        ("temp\n1\n2\n3\n4\n", {"windw": 3}, ["'windw'", "window, stride"]),
        ("t,temp,city\n1,2,Oslo\n2,3,Rome\n", {"window": 2}, ["column 'city'", "'Oslo'"]),
        ("temp\n1\n\n", {"window": 2}, ["s.csv", "at least 2 time steps"]),
        ("temp\n1\nnan\n3\n", {"window": 2}, ["s.csv", "NaN", "column 'temp'"]),
        ("temp,label\n1,a\n2,b\n3,a\n", {"window": 2}, ["label", "whole numbers"]),
        ("temp\n1\n2\n3\n", {"window": 2, "time_column": "when"}, ["no column named 'when'"]),
    ],
)
def test_bad_series_input_is_one_sentence(tmp_path, content, options, fragments):
    (tmp_path / "s.csv").write_text(content)
    with pytest.raises(DataError) as exc_info:
        load_data(tmp_path / "s.csv", series=options)
    one_sentence(exc_info, *fragments)


def test_series_from_other_files_and_non_series_data_is_refused(tmp_path):
    np.savez(tmp_path / "s.npz", x=np.zeros((10, 2)))
    with pytest.raises(DataError) as exc_info:
        load_data(tmp_path / "s.npz", series=True)
    one_sentence(exc_info, "s.npz", ".csv", ".npy")
    np.save(tmp_path / "cube.npy", np.zeros((4, 4, 4)))
    with pytest.raises(DataError) as exc_info:
        load_data(tmp_path / "cube.npy", series=True)
    one_sentence(exc_info, "cube.npy", "(4, 4, 4)", "(time steps, channels)")
    with pytest.raises(DataError) as exc_info:
        load_data("digits", series=True)
    one_sentence(exc_info, "'digits'", "not a time series")
    with pytest.raises(DataError) as exc_info:
        reconstruct_series(None, load_data("wine"))
    one_sentence(exc_info, "'wine'", "sensors")


def test_cli_flags_map_to_options():
    parser = argparse.ArgumentParser()
    add_series_arguments(parser)
    assert options_from_args(parser.parse_args([])) is None
    assert options_from_args(parser.parse_args(["--series"])) == SeriesOptions()
    got = options_from_args(parser.parse_args(["--window", "32", "--scaling", "window"]))
    assert got == SeriesOptions(window=32, scaling="window") and got.step == 4
    with pytest.raises(DataError):
        options_from_args(parser.parse_args(["--stride", "0"]))
    assert coerce_options({"window": 16, "stride": 2, "channels": ["a"], "n_steps": 9}) == (
        SeriesOptions(16, 2)
    )


# -- the built-in series ---------------------------------------------------------------------


def test_sensors_windows_are_labelled_by_the_known_anomalies():
    data = load_data("sensors")
    info = data.series
    assert data.sample_shape == (3, 64) and info.n_steps == builtin_datasets.SENSORS_STEPS
    assert data.feature_names == builtin_datasets.SENSOR_CHANNELS and info.time_column == "time"
    spans = [(s, s + n) for _, s, n, _ in builtin_datasets.SENSOR_ANOMALIES]
    expected = [int(any(s < b and s + 64 > a for a, b in spans)) for s in info.starts]
    assert data.labels.tolist() == expected and 0 < sum(expected) < len(data) // 4
    assert info.step_labels.sum() == sum(b - a for a, b in spans)
    again = load_data("sensors", series={"window": 32, "stride": 32, "scaling": "window"})
    assert again.sample_shape == (3, 32) and len(again) == 128
    with pytest.raises(DataError) as exc_info:
        load_data("sensors", series={"time_column": "when"})
    one_sentence(exc_info, "'sensors'", "'time'")


# -- conv1d, runs and exports ----------------------------------------------------------------


@pytest.fixture(scope="module")
def trained():
    """conv1d trained two epochs on the sensors windows, saved (in the session's temporary
    runs folder) and exported."""
    spec = get_models()["conv1d"]
    data = load_data("sensors")
    params = {"code_size": 8, "nodes": 8}
    done = list(train(spec, params, data, {"epochs": 2, "batch_size": 32, "seed": 0}))[-1]
    assert done.status == "completed", done.message
    return done, data, export_run(done.run_id)


def test_conv1d_passes_the_kit_on_series_windows(tmp_path):
    data = load_data("sensors").subset(range(0, 505, 16))
    testing.check_all(get_models()["conv1d"], data, tmp_path)
    with pytest.raises(Exception, match="odd"):
        get_models()["conv1d"].validate_params({"kernel_size": 4})


def test_conv1d_reconstructs_the_series_worst_at_the_anomalies(trained):
    done, data, _ = trained
    result = reconstruct_series(done.model, data)
    assert result.reconstruction.shape == (4096, 3) and result.error.shape == (4096,)
    assert np.isfinite(result.error).all() and result.channels == data.feature_names
    assert result.time[0] == "2024-01-01T00:00" and len(result.window_error) == len(data)
    anomalous = result.step_labels == 1
    assert result.error[anomalous].mean() > 1.2 * result.error[~anomalous].mean()


def test_run_records_the_series_and_a_reopened_run_gets_it_back(trained):
    done, data, _ = trained
    meta = json.loads((Path(done.run_dir) / "run.json").read_text())
    series = meta["data"]["series"]
    assert {k: series[k] for k in ("window", "stride", "scaling", "time_column")} == {
        "window": 64,
        "stride": 8,
        "scaling": "global",
        "time_column": "time",
    }
    assert series["channels"] == ["temperature", "vibration", "pressure"]
    run = load_run(done.run_dir)
    assert run.series == series
    again, _ = load_run_data(run.data_meta)
    np.testing.assert_array_equal(again.x, data.x)
    assert again.series.starts.tolist() == data.series.starts.tolist()


def test_a_resumed_run_keeps_cutting_its_csv_series_the_same_way(tmp_path):
    path = write_csv(tmp_path / "s.csv", wave(150))
    options = {"window": 12, "stride": 3, "scaling": "window"}
    data = load_data(path, series=options)
    spec = get_models()["conv1d"]
    params = {"code_size": 4, "nodes": 4, "layers": 1}
    first = list(train(spec, params, data, {"epochs": 1, "batch_size": 16}))[-1]
    run = load_run(first.run_id)
    assert {k: run.series[k] for k in options} == options
    resumed_data, _ = load_run_data(run.data_meta)
    np.testing.assert_array_equal(resumed_data.x, data.x)
    more = list(train(spec, None, resumed_data, {"epochs": 2}, resume=run))[-1]
    assert more.status == "completed" and load_run(first.run_id).series == run.series


def test_export_manifest_carries_the_series_and_the_runtime_cuts_it_identically(trained):
    done, data, result = trained
    manifest = json.loads((result.folder / "manifest.json").read_text())
    record = manifest["preprocessing"]["series"]
    assert (record["window"], record["stride"], record["scaling"]) == (64, 8, "global")
    assert record["channels"] == data.feature_names and "stride" in record["how"]
    assert manifest["data"]["sample_shape"] == [3, 64]
    for entry in manifest["graphs"]:
        if entry["input"]["preprocessing"]:
            assert entry["input"]["preprocessing"]["series"] == record
    exported = runtime.load(result.folder, provider="cpu")
    windows, starts = exported.series_windows(data.series.values)
    np.testing.assert_array_equal(windows, data.x)
    np.testing.assert_array_equal(starts, data.series.starts)
    torch_side = reconstruct_series(done.model, data)
    onnx_side = exported.reconstruct_series(data.series.values)
    np.testing.assert_allclose(onnx_side["reconstruction"], torch_side.reconstruction, atol=1e-3)
    np.testing.assert_allclose(onnx_side["error"], torch_side.error, atol=1e-5)
    # The export itself reconstructs the windows through reconstruct_series too.
    np.testing.assert_allclose(
        reconstruct_series(exported, data).error, torch_side.error, atol=1e-5
    )


def test_conv1d_exports_2d_convolutions_and_keeps_its_1d_weights(trained):
    """onnxruntime has its blocked (fast) convolutions for 2-D only, so conv1d's graphs are
    traced from a 2-D twin (kernels 1 x k); the model and its saved run keep 1-D layers, and
    the export reconstructs as the model does (the test above)."""
    import onnx
    import torch

    done, _, result = trained
    for path in sorted(result.folder.glob("*.onnx")):
        convs = [n for n in onnx.load(str(path), load_external_data=False).graph.node]
        kernels = [
            list(a.ints)
            for n in convs
            if n.op_type == "Conv"
            for a in n.attribute
            if a.name == "kernel_shape"
        ]
        assert kernels and all(len(k) == 2 and k[0] == 1 for k in kernels), (path.name, kernels)
    convs = [m for m in done.model.modules() if isinstance(m, torch.nn.Conv1d)]
    assert convs and all(m.weight.dim() == 3 for m in convs)
    assert not any(isinstance(m, torch.nn.Conv2d) for m in done.model.modules())


def test_every_dense_model_takes_series_windows_unchanged():
    data = load_data("sensors").subset(range(0, 505, 8))
    spec = get_models()["autoencoder"]
    done = list(train(spec, {"code_size": 4}, data, {"epochs": 1}, save=False))[-1]
    assert done.status == "completed" and done.model.sample_shape == (3, 64)
    assert reconstruct_series(done.model, data).reconstruction.shape == (4096, 3)


def test_flat_data_needs_series_info_for_windows():
    with pytest.raises(DataError) as exc_info:
        Dataset("w", np.zeros((4, 2, 8), np.float32), "flat")
    one_sentence(exc_info, "(N, D)", "(4, 2, 8)")
