"""Compression: quantised codes, bytes against raw, PCA at the same bytes, .aez files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from aelab.applications import ApplicationError
from aelab.apps.compress import (
    CompressParams,
    Quantiser,
    compress,
    decompress,
    header_number,
    pack,
    rate_distortion,
    unpack,
)
from aelab.cli import main
from aelab.data import load_data
from aelab.plugins import get_model
from aelab.runs import load_run
from aelab.train import Trainer

SMALL = {"code_size": 8, "layers": 1, "nodes": 64}


@pytest.fixture(scope="module")
def digits():
    return load_data("digits")


@pytest.fixture(scope="module")
def ae(digits, tmp_path_factory):
    """An autoencoder with an 8-unit code trained on digits, in its own folder (named by path)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AELAB_RUNS_DIR", str(tmp_path_factory.mktemp("compress") / "runs"))
        config = {"epochs": 20, "seed": 0, "lr": 3e-3, "batch_size": 32}
        return Trainer(get_model("autoencoder"), SMALL, digits, config).fit()


@pytest.fixture(scope="module")
def roll(tmp_path_factory):
    """An autoencoder with a 2-unit code trained on the flat swiss roll."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AELAB_RUNS_DIR", str(tmp_path_factory.mktemp("compress_flat") / "runs"))
        data = load_data("swissroll")
        params = {"code_size": 2, "layers": 1, "nodes": 32}
        return Trainer(get_model("autoencoder"), params, data, {"epochs": 5, "seed": 0}).fit()


def _summary(capsys) -> dict:
    return json.loads(capsys.readouterr().out)


def test_packing_and_quantisation_are_exact():
    rng = np.random.default_rng(0)
    for bits in range(1, 17):
        q = rng.integers(0, 2**bits, size=(13, 3)).astype(np.uint32)
        q[0, 0], q[0, 1] = 0, 2**bits - 1  # both extremes survive
        blob = pack(q, bits)
        assert len(blob) == -(-q.size * bits // 8)  # ceil: whole bytes, no more
        assert np.array_equal(unpack(blob, bits, q.size).reshape(q.shape), q), bits
    codes = rng.normal(size=(200, 4)).astype(np.float32)
    codes[:, 3] = 0.25  # a constant unit comes back as its value
    for bits in (1, 3, 8):
        quant = Quantiser.fit(codes, bits)
        q = quant.quantise(codes)
        assert q.min() == 0 and q[:, :3].max() == 2**bits - 1
        step = (quant.hi - quant.lo)[:3] / (2**bits - 1)
        error = np.abs(quant.dequantise(q) - codes)
        assert (error[:, :3] <= step / 2 + 1e-5).all() and np.allclose(error[:, 3], 0)
    # Ranges go through the JSON header as short decimals that read back as the same float32.
    values = np.concatenate([codes.ravel(), rng.normal(0, 1e6, 500), rng.normal(0, 1e-6, 500)])
    for v in values.astype(np.float32):
        assert np.float32(json.loads(json.dumps(header_number(v)))) == v
    narrow = Quantiser.fit(codes[:10], 4)  # a range from other data clips what falls outside
    back = narrow.dequantise(narrow.quantise(codes))
    assert back.min() >= narrow.lo.min() - 1e-6 and back.max() <= narrow.hi.max() + 1e-6


def test_fewer_bits_save_bytes_and_cost_error(ae, digits):
    train, held_out = digits.split(0.2, 0)
    rows = rate_distortion(ae.model, held_out.x, CompressParams(), x_train=train.x)
    assert [r["bits"] for r in rows] == list(range(1, 13))
    sizes = [r["bytes_per_sample"] for r in rows]
    assert all(b > a for a, b in zip(sizes, sizes[1:]))
    assert rows[0]["code_bytes_per_sample"] == 1.0 and rows[-1]["code_bytes_per_sample"] == 12.0
    for method in ("model", "pca"):
        errors = [r[f"{method}_mse"] for r in rows]
        assert errors[0] > 1.3 * errors[-1], (method, errors)  # 1 bit is far worse than 12
        assert all(b <= a * 1.02 for a, b in zip(errors, errors[1:])), (method, errors)
    results = {
        b: compress(ae.model, held_out.x, CompressParams(bits=b), x_train=train.x) for b in (2, 8)
    }
    two, eight = results[2].to_json(), results[8].to_json()
    assert two["code_bytes_per_sample"] == 2.0 and eight["code_bytes_per_sample"] == 8.0
    assert two["raw_bytes_per_sample"] == 64 and two["raw_counted_as"] == "8-bit pixels"
    assert two["ratio"] > eight["ratio"] > 1 and two["mse"] > eight["mse"]
    assert two["pca"]["components"] == 8 and two["pca"]["fitted_on"] == "the training data"
    assert two["pca"]["mse"] > eight["pca"]["mse"]
    # At 8 bits quantisation costs almost nothing; the unquantised figure is the same either way.
    assert abs(eight["quantisation_cost_db"]) < 0.1 < two["quantisation_cost_db"]
    assert two["mse_unquantised"] == eight["mse_unquantised"]
    assert eight["bytes_per_sample"] == pytest.approx(8 + eight["header_bytes"] / 359, abs=1e-4)


def test_the_file_round_trip_equals_the_quantised_reconstruction(ae, digits, tmp_path, capsys):
    np.save(tmp_path / "few.npy", digits.x[:20])
    model = load_run(ae.run_dir).model
    run = str(ae.run_dir)
    for bits, range_from in ((6, "data"), (3, "training")):
        packed = tmp_path / f"few-{bits}.aez"
        args = ["compress", run, str(tmp_path / "few.npy"), "--bits", str(bits), "--json"]
        assert main([*args, "--range", range_from, "--out", str(packed)]) == 0
        summary = _summary(capsys)
        assert summary["n"] == 20 and summary["file_bytes"] == packed.stat().st_size
        assert summary["out"] == str(packed) and summary["range_from"] == range_from
        out = tmp_path / f"back-{bits}.npy"
        assert main(["compress", run, "--decompress", str(packed), "--out", str(out)]) == 0
        assert "Restored 20 sample(s) of shape [1, 8, 8]" in capsys.readouterr().out
        train = digits.split(0.2, 0)[0].x
        params = CompressParams(bits=bits, range_from=range_from)
        expected = compress(model, digits.x[:20], params, x_train=train, baseline=False)
        assert np.array_equal(np.load(out, allow_pickle=False), expected.reconstruction)
    pngs = tmp_path / "pngs"
    assert main(["compress", run, "--decompress", str(packed), "--out", str(pngs), "--json"]) == 0
    assert _summary(capsys)["files"] == 20 and len(list(pngs.glob("*.png"))) == 20
    # Without --out: the run's own held-out part, as text.
    assert main(["compress", run, "--bits", "4"]) == 0
    text = capsys.readouterr().out
    assert "held-out part" in text and "359 samples" in text and "ratio" in text and "PCA" in text
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_damaged_foreign_and_stale_files_are_refused(ae, roll, digits, tmp_path, capsys):
    run = str(ae.run_dir)
    good = tmp_path / "good.aez"
    assert main(["compress", run, "--out", str(good)]) == 0
    capsys.readouterr()
    blob = good.read_bytes()
    flipped = bytearray(blob)
    flipped[len(blob) - 10] ^= 0x10  # one bit of the codes
    cases = {
        "flipped.aez": bytes(flipped),
        "short.aez": blob[: len(blob) // 2],
        "text.aez": b"hello, not a file of codes",
    }
    for name, content in cases.items():
        (tmp_path / name).write_bytes(content)
    for name, fragment in (
        ("flipped.aez", "is damaged or truncated: its CRC-32 checksum does not match"),
        ("short.aez", "is damaged or truncated"),
        ("text.aez", "is not an aelab compressed file"),
        ("missing.aez", "No compressed file at"),
    ):
        assert main(["compress", run, "--decompress", str(tmp_path / name)]) == 1
        err = capsys.readouterr().err
        assert fragment in err and err.count("\n") == 1, (name, err)
    assert main(["compress", str(roll.run_dir), "--decompress", str(good)]) == 1
    err = capsys.readouterr().err
    assert f"was made by run '{ae.run_id}', not '{roll.run_id}'" in err
    # The same run id with other weights (as after training it further) cannot decode it.
    other = Trainer(get_model("autoencoder"), SMALL, digits, {"epochs": 1}, save=False).fit()
    with pytest.raises(ApplicationError, match="made by other weights"):
        decompress(other.model, good, ae.run_id)


def test_flat_data_is_compressed_and_restored_as_arrays(roll, tmp_path, capsys):
    run = str(roll.run_dir)
    packed = tmp_path / "roll.aez"
    assert main(["compress", run, "--data", "swissroll", "--out", str(packed), "--json"]) == 0
    summary = _summary(capsys)
    assert summary["kind"] == "flat" and summary["raw_counted_as"] == "float32 values"
    assert summary["raw_bytes_per_sample"] == 12 and summary["raw_8bit_bytes_per_sample"] is None
    assert summary["code_bytes_per_sample"] == 2.0 and summary["pca"]["components"] == 2
    assert summary["ratio"] == pytest.approx(12 * summary["n"] / packed.stat().st_size, abs=1e-4)
    out = tmp_path / "roll.npy"
    assert main(["compress", run, "--decompress", str(packed), "--out", str(out)]) == 0
    capsys.readouterr()
    data = load_data("swissroll")
    expected = compress(load_run(run).model, data.x, CompressParams(), baseline=False)
    assert np.array_equal(np.load(out), expected.reconstruction)
    assert main(["compress", run, "--decompress", str(packed), "--out", str(tmp_path / "f")]) == 1
    assert "flat vectors, not images" in capsys.readouterr().err


def test_refusals_get_one_sentence(ae, tmp_path, capsys):
    run = str(ae.run_dir)
    for bits, fragment in (("0", "greater than or equal to 1"), ("17", "less than or equal to 16")):
        assert main(["compress", run, "--bits", bits]) == 1
        err = capsys.readouterr().err
        assert f"'bits' must be {fragment}" in err and err.count("\n") == 1
    assert main(["compress", run, "--data", "swissroll"]) == 1
    assert "has samples of shape [3], but run" in capsys.readouterr().err
    with pytest.raises(ApplicationError, match=r"has shape \[5, 7\], but the model takes"):
        compress(ae.model, np.zeros((5, 7), np.float32), CompressParams())
    assert main(["compress", run, "digits", "--data", "digits"]) == 1
    assert "not both" in capsys.readouterr().err
    assert main(["compress", run, "--out", str(tmp_path / "x.zip")]) == 1
    assert "to a .aez file, not x.zip" in capsys.readouterr().err
    existing = tmp_path / "taken.aez"
    existing.write_bytes(b"keep me")
    assert main(["compress", run, "--out", str(existing)]) == 1
    assert "pass --force" in capsys.readouterr().err and existing.read_bytes() == b"keep me"
    assert main(["compress", run, "--out", str(existing), "--force", "--json"]) == 0
    assert _summary(capsys)["file_bytes"] == existing.stat().st_size
    gan = Trainer(get_model("gan"), {}, load_data("swissroll"), {"epochs": 1}).fit()
    assert main(["compress", gan.run_id]) == 1
    assert "needs a model that can encode" in capsys.readouterr().err


def test_the_lab_endpoint_compresses_and_sweeps(lab):
    pytest.importorskip("gradio_client")
    from gradio_client.exceptions import AppError
    from labapi import client, train

    c = client(lab)
    train(c, "autoencoder", SMALL, epochs=3)
    img, _table, plot, caption, result = c.predict(4, "data", api_name="/compress")
    assert Path(img).is_file() and result["n"] == 359 and result["bits"] == 4
    assert result["code_bytes_per_sample"] == 4.0 and result["pca"]["components"] == 8
    assert "ratio" in caption and "PSNR" in caption and "header" in caption
    methods = {row[2] for row in plot["data"]}
    assert methods == {"model", "PCA, 8 comp."} and len(plot["data"]) == 24
    assert [r["bits"] for r in result["sweep"]] == list(range(1, 13))
    with pytest.raises(AppError, match="less than minimum value 1"):  # the slider's own check
        c.predict(0, "data", api_name="/compress")
    other = client(lab)
    train(other, "gan", epochs=1)
    with pytest.raises(AppError, match="Compression needs a model that can encode"):
        other.predict(8, "data", api_name="/compress")
