"""Anomaly detection: one-class AUROC above chance, thresholds, flat data, the CLI, GANs, refusals,
and the exported threshold deciding the same in the torch-free runtime as in torch."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from aelab import runtime
from aelab.applications import ApplicationError, AppParams
from aelab.apps.anomaly import (
    SPEC,
    AnomalyParams,
    AnomalyResult,
    detect,
    error_maps,
    export_record,
    normal_data,
    scores,
)
from aelab.cli import main
from aelab.data import Dataset, keep_labels, load_data
from aelab.errors import AelabError, DataError
from aelab.export import export_model, export_run
from aelab.params import schema_problems
from aelab.plugins import get_applications, get_model
from aelab.runs import load_run
from aelab.train import Trainer

NORMAL = 3  # the class of the one-class runs: neither the easiest digit nor the hardest


def _train(model_id, data, runs_dir=None, epochs=40, **params):
    spec = get_model(model_id)
    config = {"epochs": epochs, "batch_size": 32, "seed": 0}
    trainer = Trainer(spec, params, data, config, save=runs_dir is not None, runs_dir=runs_dir)
    return trainer.fit()


@pytest.fixture(scope="module")
def digits():
    return load_data("digits")


@pytest.fixture(scope="module")
def one_class(digits, tmp_path_factory):
    """An autoencoder trained on the 3s of digits (saved), and a held-out mix to score: its own
    validation 3s and every other digit."""
    runs = tmp_path_factory.mktemp("runs")
    done = _train("autoencoder", keep_labels(digits, [NORMAL]), str(runs), code_size=4)
    run = load_run(done.run_dir)
    val = normal_data(run)
    mix = digits.subset(digits.labels != NORMAL)
    mix = Dataset(
        "mix",
        np.concatenate([val.x, mix.x]),
        "image",
        np.concatenate([val.labels, mix.labels]),
        label_names=digits.label_names,
    )
    return run, val, mix


def run_cli(args, capsys):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_sentence(code, err, *words):
    assert code == 1
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    for word in words:
        assert word in lines[0], lines[0]


# -- registration ----------------------------------------------------------------------------
def test_registered_like_a_builtin_with_a_complete_schema():
    spec = get_applications()["anomaly"]
    assert spec is SPEC and spec.plugin == "aelab.apps.anomaly"
    assert schema_problems(AnomalyParams, AppParams) == []
    assert spec.export_record is export_record and spec.panel == "aelab.ui.panels.anomaly:build"
    assert "AUROC" in spec.help and "one-class" in spec.help.lower()
    with pytest.raises(AelabError, match="contamination"):
        spec.validate_params({"contamination": 0.7})


# -- the one-class protocol ------------------------------------------------------------------
def test_one_class_digits_auroc_is_clearly_above_chance(one_class):
    run, val, mix = one_class
    assert run.data_meta["kept_labels"] == [NORMAL]
    assert set(np.unique(val.labels)) == {NORMAL}  # the held-out part is normal only
    result = detect(run.model, mix, {"normal_labels": [NORMAL]})
    assert result.score_kind == "reconstruction"
    assert result.auroc > 0.9 and result.average_precision > 0.9
    fpr, tpr = result.roc
    assert fpr[0] == 0 and tpr[-1] == 1 and np.all(np.diff(fpr) >= 0)
    # Without normal classes there is nothing to measure against.
    plain = detect(run.model, mix, {})
    assert plain.auroc is None and plain.roc is None and plain.anomalous is None
    np.testing.assert_array_equal(plain.scores, result.scores)


def test_thresholds_behave(one_class):
    run, val, mix = one_class
    n = len(mix)
    f1 = {}
    for c in (0.0, 0.05, 0.3):
        r = detect(run.model, mix, {"contamination": c, "normal_labels": [NORMAL]})
        assert abs(r.n_flagged - c * n) <= 1 and r.n_flagged == int(r.flagged.sum())
        assert np.all(r.scores[r.flagged] >= r.threshold) and np.all(
            r.scores[~r.flagged] < r.threshold
        )
        f1[c] = r.f1
    normal = detect(run.model, mix, {"threshold": "normal", "normal_labels": [NORMAL]}, normal=val)
    val_scores = scores(run.model, val.x)
    assert abs(np.mean(val_scores >= normal.threshold) - 0.05) <= 1 / len(val) + 1e-9
    best = detect(run.model, mix, {"threshold": "best_f1", "normal_labels": [NORMAL]})
    assert best.f1 >= max(f1.values()) and best.f1 >= normal.f1
    json.dumps(best.to_json(), allow_nan=False)  # counts, threshold and metrics; no arrays
    assert set(best.to_json()) >= {"threshold", "n", "n_flagged", "auroc", "average_precision"}
    with pytest.raises(ApplicationError, match="normal data"):
        detect(run.model, mix, {"threshold": "normal"})
    with pytest.raises(ApplicationError, match="labels"):
        detect(run.model, mix, {"threshold": "best_f1"})
    # All-normal data: the metrics are undefined, said in a note, and best F1 refused.
    only = detect(run.model, val, {"normal_labels": [NORMAL]})
    assert only.auroc is None and "undefined" in only.note
    with pytest.raises(ApplicationError, match="both"):
        detect(run.model, val, {"threshold": "best_f1", "normal_labels": [NORMAL]})


def test_scores_are_batched_deterministic_and_error_maps_match(one_class):
    run, _, mix = one_class
    model = run.model.train()  # scoring switches to eval mode and back
    s1 = scores(model, mix.x)
    assert model.training
    s2 = scores(model, mix.x[:7])
    np.testing.assert_allclose(s1[:7], s2, rtol=1e-6)
    maps = error_maps(model, mix.x[:5])
    assert maps.shape == mix.x[:5].shape and maps.dtype == np.float32
    np.testing.assert_allclose(maps.reshape(5, -1).mean(1), s1[:5], rtol=1e-5)
    assert error_maps(model, mix.x[0]).shape == mix.x[0].shape
    with pytest.raises(ApplicationError, match="shape"):
        scores(model, np.zeros((2, 3), np.float32))
    with pytest.raises(ApplicationError, match="critic"):
        scores(model, mix.x[:2], kind="critic")
    model.eval()


def test_labels_are_checked(one_class, digits):
    run, _, mix = one_class
    with pytest.raises(DataError, match="11"):
        detect(run.model, mix, {"normal_labels": [11]})
    unlabelled = Dataset("plain", mix.x[:20], "image")
    with pytest.raises(DataError, match="no labels"):
        detect(run.model, unlabelled, {"normal_labels": [NORMAL]})
    with pytest.raises(DataError, match="no labels"):
        keep_labels(unlabelled, [0])
    assert keep_labels(digits, ["3", 5]).kept_labels == [3, 5]


def test_vae_scores_by_reconstruction_and_offers_the_elbo(digits):
    data = keep_labels(digits, [0])
    model = _train("vae", data, epochs=3, code_size=4).model
    assert detect(model, digits.subset(slice(0, 60)), {}).score_kind == "reconstruction"
    elbo = scores(model, digits.x[:60], kind="elbo")
    assert elbo.shape == (60,) and np.isfinite(elbo).all() and (elbo > 0).all()


# -- flat data and the command line ----------------------------------------------------------
def _tabular(path: Path) -> Path:
    """A CSV of 10 features: normal rows (label 0) near a 2-D curved manifold, anomalies (label
    1) anywhere in the box."""
    rng = np.random.default_rng(0)
    t = rng.uniform(-1, 1, (400, 2))
    basis = rng.normal(size=(4, 10))
    feats = np.concatenate([t, np.sin(2 * t)], axis=1) @ basis
    normal = feats + 0.02 * rng.normal(size=feats.shape)
    lo, hi = normal.min(0), normal.max(0)
    odd = rng.uniform(lo, hi, (60, 10))
    x = np.concatenate([normal, odd])
    y = np.concatenate([np.zeros(400), np.ones(60)]).astype(int)
    header = ",".join(f"f{i}" for i in range(10)) + ",label"
    np.savetxt(path, np.column_stack([x, y]), delimiter=",", header=header, comments="", fmt="%.6g")
    return path


def test_cli_on_flat_data_with_json_and_out(tmp_path, capsys):
    csv = _tabular(tmp_path / "table.csv")
    code, out, _ = run_cli(
        [
            "train",
            "autoencoder",
            "--data",
            csv,
            "--keep-labels",
            "0",
            "-o",
            "code_size",
            "3",
            "--epochs",
            "60",
            "--batch-size",
            "32",
            "--json",
        ],
        capsys,
    )
    assert code == 0
    run_id = json.loads(out.strip().splitlines()[-1])["run"]
    meta = json.loads((tmp_path / "runs" / run_id / "run.json").read_text())
    assert meta["data"]["kept_labels"] == [0] and meta["data"]["n"] == 400
    scores_csv = tmp_path / "out" / "scores.csv"
    code, out, _ = run_cli(["anomaly", run_id, "--json", "--out", scores_csv], capsys)
    assert code == 0
    summary = json.loads(out)
    assert summary["normal_labels"] == [0]  # the kept classes are the default normal ones
    assert summary["n"] == 460 and summary["n_anomalous"] == 60
    assert summary["auroc"] > 0.8 and 0 < summary["average_precision"] <= 1
    assert summary["n_flagged"] == 23  # 5% of 460
    rows = scores_csv.read_text().splitlines()
    assert rows[0] == "index,score,flagged,label" and len(rows) == 461
    table = np.loadtxt(scores_csv, delimiter=",", skiprows=1)
    assert table[:, 2].sum() == 23 and set(table[:, 3]) == {0.0, 1.0}
    assert not [p for p in scores_csv.parent.iterdir() if p.name.startswith(".")]  # no temp left
    # An existing --out is kept unless --force.
    code, _, err = run_cli(["anomaly", run_id, "--out", scores_csv], capsys)
    assert_one_sentence(code, err, "exists", "--force")
    code, out, _ = run_cli(
        ["anomaly", run_id, "--out", scores_csv, "--force", "--threshold", "best_f1"], capsys
    )
    assert code == 0 and "auroc" in out and "threshold" in out and "flagged" in out
    code, out, _ = run_cli(["anomaly", run_id, "--threshold", "normal", "--json"], capsys)
    assert code == 0 and json.loads(out)["threshold_method"] == "normal"
    # A resumed run keeps its classes.
    code, _, _ = run_cli(["train", "--resume", run_id, "--epochs", "1", "--json"], capsys)
    meta = json.loads((tmp_path / "runs" / run_id / "run.json").read_text())
    assert code == 0 and meta["data"]["kept_labels"] == [0] and meta["data"]["n"] == 400
    # Exported while its data file is gone: exported all the same, saying why there is no record.
    csv.unlink()
    export = export_run(run_id, out_dir=tmp_path / "export")
    assert "could not be loaded" in export.manifest["application_notes"]["anomaly"]
    with pytest.raises(runtime.RuntimeInputError, match="could not be loaded"):
        runtime.load(export.folder, provider="cpu").score(np.zeros((1, 10), np.float32))


def test_cli_errors_are_one_sentence(one_class, tmp_path, capsys):
    run, _, mix = one_class
    folder = str(run.path)
    code, _, err = run_cli(["anomaly", "no-such-run"], capsys)
    assert_one_sentence(code, err, "no-such-run")
    code, _, err = run_cli(["anomaly", folder, "--data", "swissroll"], capsys)
    assert_one_sentence(code, err, "shape")
    plain = tmp_path / "plain.npy"
    np.save(plain, mix.x[:30, 0])  # the right shape, but no labels
    code, _, err = run_cli(["anomaly", folder, "--data", plain, "--normal-labels", "3"], capsys)
    assert_one_sentence(code, err, "no labels")
    code, out, _ = run_cli(["anomaly", folder, "--data", plain, "--json"], capsys)
    assert code == 0 and json.loads(out)["auroc"] is None  # unlabelled: scores, no metrics
    code, _, err = run_cli(["anomaly", folder, "--normal-labels", "42"], capsys)
    assert_one_sentence(code, err, "42")
    code, _, err = run_cli(["anomaly", folder, "--contamination", "0.9"], capsys)
    assert_one_sentence(code, err, "contamination")
    code, _, err = run_cli(["anomaly", folder, "--score", "critic"], capsys)
    assert_one_sentence(code, err, "critic")
    code, _, err = run_cli(["train", "autoencoder", "--data", plain, "--keep-labels", "1"], capsys)
    assert_one_sentence(code, err, "no labels")
    code, _, err = run_cli(["train", "autoencoder", "--keep-labels", "12"], capsys)
    assert_one_sentence(code, err, "12")


# -- models without a reconstruction ---------------------------------------------------------
def test_gan_scores_by_its_critic_and_exports_it(digits, tmp_path):
    done = _train("gan", digits, str(tmp_path / "runs"), epochs=2, code_size=8)
    run = load_run(done.run_dir)
    assert SPEC.reason_unavailable(run.model) is None
    result = detect(run.model, digits.subset(slice(0, 100)), {"normal_labels": [0]})
    assert result.score_kind == "critic" and result.auroc is not None
    with torch.no_grad():
        logits = run.model.critic(torch.as_tensor(digits.x[:100])).numpy()[:, 0]
    np.testing.assert_allclose(result.scores, -logits, rtol=1e-5, atol=1e-6)
    with pytest.raises(ApplicationError, match="reconstructs"):
        error_maps(run.model, digits.x[:2])
    export = export_run(run, out_dir=tmp_path / "export")
    assert export.manifest["applications"]["anomaly"]["score"] == "critic"
    loaded = runtime.load(export.folder, provider="cpu")
    torch_scores = scores(run.model, digits.x)
    np.testing.assert_allclose(loaded.score(digits.x), torch_scores, rtol=1e-4, atol=1e-5)


def test_a_model_that_neither_reconstructs_nor_judges_is_refused(digits, capsys, tmp_path):
    done = _train("cvae", digits, str(tmp_path / "runs"), epochs=1, code_size=2, n_classes=10)
    reason = SPEC.reason_unavailable(done.model)
    assert reason and "reconstructs" in reason and reason.endswith(".")
    with pytest.raises(ApplicationError) as exc_info:
        detect(done.model, digits, {})
    assert str(exc_info.value) == reason
    code, _, err = run_cli(["anomaly", done.run_id], capsys)
    assert_one_sentence(code, err, "reconstructs")
    export = export_run(done.run_id, out_dir=tmp_path / "export")
    assert "applications" not in export.manifest


# -- export and runtime ----------------------------------------------------------------------
def test_runtime_decides_as_torch_with_the_exported_threshold(one_class, tmp_path):
    run, val, mix = one_class
    export = export_run(run, out_dir=tmp_path / "export")
    record = export.manifest["applications"]["anomaly"]
    assert record["score"] == "reconstruction" and record["graph"] == "autoencoder"
    assert record["normal_data"]["part"] == "validation split"
    assert record["normal_data"]["n"] == len(val) and record["normal_data"]["labels"] == [NORMAL]
    val_scores = scores(run.model, val.x)
    assert record["threshold"] == pytest.approx(np.quantile(val_scores, 0.95), rel=0.2)
    assert record["normalization"]["mean"] == pytest.approx(val_scores.mean())
    loaded = runtime.load(export.folder, provider="cpu")
    torch_scores = scores(run.model, mix.x)
    rt_scores = loaded.score(mix.x)
    np.testing.assert_allclose(rt_scores, torch_scores, rtol=1e-4, atol=1e-7)
    decided = loaded.is_anomaly(mix.x)
    assert decided.dtype == bool and decided.shape == (len(mix),)
    np.testing.assert_array_equal(decided, torch_scores >= record["threshold"])
    np.testing.assert_array_equal(loaded.is_anomaly(val.x), val_scores >= record["threshold"])
    z = loaded.score(val.x, normalize=True)
    assert abs(z.mean()) < 1e-6 and z.std() == pytest.approx(1.0, rel=1e-4)
    # Raw values (digits run 0-16) are scaled as the training data was.
    np.testing.assert_allclose(loaded.score(mix.x * 16, preprocess=True), rt_scores, rtol=1e-5)
    # The same decisions as `detect` with the normal threshold on the same normal data.
    r = detect(run.model, mix, {"threshold": "normal"}, normal=val)
    assert r.threshold == pytest.approx(record["threshold"])
    np.testing.assert_array_equal(r.flagged, decided)


def test_exports_without_a_record_say_why(one_class, tmp_path):
    run, _, mix = one_class
    part = export_run(run, out_dir=tmp_path / "part", graphs=["encoder"])
    assert "anomaly" in part.manifest["application_notes"]
    with pytest.raises(runtime.RuntimeInputError, match="autoencoder"):
        runtime.load(part.folder, provider="cpu").score(mix.x[:2])
    bare = export_model(
        run.model,
        run.spec,
        run.params,
        run_id="bare",
        data_meta=run.data_meta,
        out_dir=tmp_path / "bare",
    )
    assert "applications" not in bare.manifest
    with pytest.raises(runtime.RuntimeInputError, match="no anomaly-detection record"):
        runtime.load(bare.folder, provider="cpu").is_anomaly(mix.x[:2])


def test_result_fields():
    fields = set(AnomalyResult.__dataclass_fields__)
    assert fields >= {
        "scores",
        "threshold",
        "flagged",
        "score_kind",
        "threshold_method",
        "n",
        "n_flagged",
        "auroc",
        "average_precision",
        "roc",
    }
