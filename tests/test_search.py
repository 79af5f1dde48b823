"""Similarity search: `aelab search` on images and flat data, queries by number, PNG and .npy,
precision@k against raw inputs and PCA, refusals, and the lab endpoints."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from aelab.applications import ApplicationError
from aelab.apps.search import SearchParams, evaluate, neighbours, search
from aelab.cli import main
from aelab.data import Dataset, load_data
from aelab.errors import ParamsError
from aelab.plugins import get_application, get_model
from aelab.train import Trainer


@pytest.fixture(scope="module")
def digits():
    return load_data("digits")


@pytest.fixture(scope="module")
def ae(digits, tmp_path_factory):
    """An autoencoder with an 8-unit code trained on 80% of digits for 25 epochs (20% held out), saved in its
    own folder (named by path, so every test's own runs folder can stay empty)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AELAB_RUNS_DIR", str(tmp_path_factory.mktemp("search") / "runs"))
        config = {"epochs": 25, "seed": 0}
        return Trainer(get_model("autoencoder"), {"code_size": 8}, digits, config).fit()


@pytest.fixture(scope="module")
def roll(tmp_path_factory):
    """An autoencoder with a 2-unit code on the swiss roll (flat, 3 features, 6 segments)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AELAB_RUNS_DIR", str(tmp_path_factory.mktemp("search_roll") / "runs"))
        data = load_data("swissroll")
        return Trainer(get_model("autoencoder"), {"code_size": 2}, data, {"epochs": 5}).fit()


def _cli_json(capsys, *args) -> dict:
    assert main(["search", *map(str, args), "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_neighbours_match_brute_force_and_leave_the_query_out():
    rng = np.random.default_rng(0)
    base = rng.standard_normal((300, 5))
    queries = np.concatenate([base[[7, 42]], rng.standard_normal((3, 5))])
    exclude = [7, 42, None, None, None]
    for metric in ("euclidean", "cosine"):
        if metric == "euclidean":
            full = np.linalg.norm(queries[:, None] - base[None], axis=2)
        else:
            full = 1 - _unit(queries) @ _unit(base).T
        order = np.argsort(full, axis=1, kind="stable")
        idx, dist = neighbours(base, queries, 6, metric)
        assert np.array_equal(idx, order[:, :6])
        assert np.allclose(dist, np.sort(full, axis=1)[:, :6], atol=1e-9)
        assert idx[0, 0] == 7 and idx[1, 0] == 42 and dist[0, 0] == 0.0  # a copy is itself
        left_out, _ = neighbours(base, queries, 6, metric, exclude=exclude)
        for i, own in enumerate(exclude):
            assert np.array_equal(left_out[i], [j for j in order[i] if j != own][:6])
        assert 7 not in left_out[0] and 42 not in left_out[1]
    with pytest.raises(ApplicationError, match="more neighbours than the 299 samples"):
        neighbours(base, queries[:1], 300, exclude=[0])


def test_a_trained_autoencoder_searches_far_better_than_chance(ae, digits, capsys):
    train, held = digits.split(0.2, 0)
    result = evaluate(ae.model, train, SearchParams(k=10), queries=held)
    code, raw, pca = (result.row(s) for s in ("code", "raw", "pca"))
    assert abs(result.chance - 0.1) < 0.01 and result.n_queries == 359
    assert code["units"] == 8 and pca["units"] == 8 and raw["units"] == 64
    assert code["precision_at_k"] > 0.8 and code["precision_at_1"] > 0.85, result.rows
    assert raw["precision_at_k"] > 0.9 and pca["precision_at_k"] > 0.85, result.rows
    # The command defaults to the same protocol: the run's held-out part among its training part.
    summary = _cli_json(capsys, ae.run_dir, "--evaluate")
    assert summary["protocol"].startswith("359 held-out queries") and summary["searched"] == 1438
    assert summary["rows"][0]["precision_at_k"] == round(code["precision_at_k"], 4)
    # --data: leave-one-out over that data, a seeded draw of queries.
    summary = _cli_json(capsys, ae.run_dir, "--evaluate", "--data", "digits", "--queries", "300")
    assert summary["queries"] == 300 and summary["searched"] == 1796
    assert (
        summary["protocol"].startswith("leave-one-out")
        and summary["rows"][0]["precision_at_k"] > 0.8
    )
    assert main(["search", str(ae.run_dir), "--evaluate", "-k", "5", "--metric", "cosine"]) == 0
    text = capsys.readouterr().out
    assert "precision@5" in text and "raw inputs" in text and "PCA" in text and "chance" in text


def test_a_query_by_number_leaves_itself_out_unless_asked(ae, digits, capsys, tmp_path):
    summary = _cli_json(capsys, ae.run_dir, "#12", 40, "-k", "5")
    first, second = summary["queries"]
    assert summary["n"] == 1797 and summary["units"] == 8 and summary["k"] == 5
    assert first["query"] == "#12" and first["self_index"] == 12 and first["label"] == 2
    assert [h["rank"] for h in first["hits"]] == [1, 2, 3, 4, 5]
    assert 12 not in [h["index"] for h in first["hits"]] and 40 not in [
        h["index"] for h in second["hits"]
    ]
    assert all(h["distance"] > 0 for h in first["hits"])
    distances = [h["distance"] for h in first["hits"]]
    assert distances == sorted(distances)
    assert first["precision"] == np.mean([h["label"] == 2 for h in first["hits"]])
    kept = _cli_json(capsys, ae.run_dir, "12", "-k", "5", "--include-self")["queries"][0]
    assert kept["hits"][0] == {"rank": 1, "index": 12, "distance": 0.0, "label": 2}
    assert [h["index"] for h in kept["hits"][1:]] == [h["index"] for h in first["hits"][:4]]
    # The same through the core, and as text.
    hits = search(ae.model, digits, SearchParams(k=5), numbers=[12]).hits[0]
    assert hits.indices.tolist() == [h["index"] for h in first["hits"]]
    assert main(["search", str(ae.run_dir), "12", "-k", "3"]) == 0
    text = capsys.readouterr().out
    assert "query  #12 (label 2), itself left out" in text and "rank  sample" in text


def test_png_and_npy_queries_and_a_csv_of_hits(ae, digits, capsys, tmp_path):
    # A .npy holding exact copies of samples 12 and 40: they are members, so left out.
    np.save(tmp_path / "two.npy", digits.x[[12, 40]])
    summary = _cli_json(capsys, ae.run_dir, tmp_path / "two.npy", "-k", "4")
    a, b = summary["queries"]
    assert (a["query"], a["self_index"], a["label"]) == ("two.npy[0]", 12, 2)
    assert b["self_index"] == 40 and 40 not in [h["index"] for h in b["hits"]]
    by_number = _cli_json(capsys, ae.run_dir, 12, "-k", "4")["queries"][0]
    assert a["hits"] == by_number["hits"]
    # A PNG of sample 12 is quantised to 8 bits: not an exact copy, and its nearest is #12.
    pixels = np.round(digits.x[12, 0] * 255).astype(np.uint8)
    Image.fromarray(pixels, "L").save(tmp_path / "q.png")
    png = _cli_json(capsys, ae.run_dir, tmp_path / "q.png", "-k", "3")["queries"][0]
    assert png["query"] == "q.png" and png["self_index"] is None and "label" not in png
    assert png["hits"][0]["index"] == 12 and png["hits"][0]["distance"] < 0.05
    # One CSV row per neighbour; never overwritten without --force.
    out = tmp_path / "hits.csv"
    args = ["search", str(ae.run_dir), "12", str(tmp_path / "q.png"), "-k", "3", "--out", str(out)]
    assert main(args) == 0
    lines = out.read_text().splitlines()
    assert lines[0] == "query,rank,index,distance,label" and len(lines) == 1 + 2 * 3
    assert lines[4].startswith("q.png,1,12,")
    capsys.readouterr()
    assert main(args) == 1 and "pass --force" in capsys.readouterr().err
    assert main([*args, "--force"]) == 0
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_flat_data_is_searched_and_evaluated(roll, capsys, tmp_path):
    summary = _cli_json(capsys, roll.run_dir, 0, 1999, "-k", "3", "--metric", "cosine")
    assert summary["units"] == 2 and summary["n"] == 2000 and summary["metric"] == "cosine"
    assert [len(q["hits"]) for q in summary["queries"]] == [3, 3]
    data = load_data("swissroll")
    np.save(tmp_path / "one.npy", data.x[5] + 0.01)  # one sample without the batch axis
    q = _cli_json(capsys, roll.run_dir, tmp_path / "one.npy", "-k", "2")["queries"][0]
    assert q["query"] == "one.npy" and q["self_index"] is None and len(q["hits"]) == 2
    ev = _cli_json(capsys, roll.run_dir, "--evaluate", "-k", "5")
    assert [r["space"] for r in ev["rows"]] == ["code", "raw", "pca"]
    assert ev["rows"][1]["units"] == 3 and ev["rows"][2]["units"] == 2
    assert all(r["precision_at_k"] > ev["chance"] for r in ev["rows"]), ev
    Image.fromarray(np.zeros((8, 8), np.uint8), "L").save(tmp_path / "q.png")
    assert main(["search", str(roll.run_dir), str(tmp_path / "q.png")]) == 1
    assert "flat vectors of shape [3], not images" in capsys.readouterr().err


def test_a_gan_is_refused_with_the_reason(capsys):
    gan = Trainer(get_model("gan"), {}, load_data("swissroll"), {"epochs": 1}).fit()
    assert main(["search", gan.run_id, "3"]) == 1
    assert "needs a model that can encode" in capsys.readouterr().err
    with pytest.raises(ApplicationError, match="needs a model that can encode"):
        get_application("search").require(gan.model)


@pytest.mark.parametrize(
    "args, message",
    [
        (["1797"], "Sample #1797 is out of range: digits has 1797 samples (#0 to #1796)."),
        (["#-1"], "Sample #-1 is out of range"),
        (["1", "-k", "0"], "'k' must be greater than or equal to 1"),
        (["1", "-k", "5000"], "'k' must be less than or equal to 1000"),
        (["bad.npy"], "has shape [5, 7], but the model takes samples of shape [1, 8, 8]"),
        (["notes.txt"], "must be a sample number (like 12 or #12), a .npy file or a PNG/JPEG"),
        (["missing.npy"], "No query file at missing.npy"),
        (["pickled.npy"], "is not a plain .npy array"),
        ([], "Name a query"),
        (["3", "--evaluate"], "not both"),
        (["3", "--data", "swissroll"], "samples of shape [3], but run"),
        (["--evaluate", "--out", "x.csv"], "--evaluate prints its table only"),
        (["3", "--out", "x.txt"], "Write the hits to a .csv file, not x.txt."),
    ],
)
def test_bad_requests_get_one_sentence(ae, args, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    np.save(tmp_path / "bad.npy", np.zeros((5, 7), np.float32))
    np.save(tmp_path / "pickled.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    (tmp_path / "notes.txt").write_text("hello")
    made = set(tmp_path.iterdir())
    assert main(["search", str(ae.run_dir), *args]) == 1
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err
    assert set(tmp_path.iterdir()) == made  # nothing written


def test_the_core_refuses_what_it_cannot_search(ae, digits):
    tiny = digits.subset(np.arange(4))
    with pytest.raises(ApplicationError, match="more neighbours than the 3 samples"):
        search(ae.model, tiny, SearchParams(k=4), numbers=[0])
    assert (
        len(
            search(ae.model, tiny, SearchParams(k=4, include_self=True), numbers=[0])
            .hits[0]
            .indices
        )
        == 4
    )
    with pytest.raises(ApplicationError, match="takes samples of shape"):
        search(ae.model, digits, SearchParams(), samples=np.zeros((2, 64), np.float32))
    with pytest.raises(ApplicationError, match="NaN"):
        search(ae.model, digits, SearchParams(), samples=np.full((1, 8, 8), np.nan, np.float32))
    unlabelled = Dataset("plain", digits.x[:50], "image")
    with pytest.raises(ApplicationError, match="precision@k needs labels"):
        evaluate(ae.model, unlabelled, SearchParams())
    with pytest.raises(ParamsError, match="'metric'"):
        get_application("search").validate_params({"metric": "manhattan"})


def test_the_lab_endpoints_search_and_evaluate(lab, digits, tmp_path):
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError
    from labapi import client, train

    c = client(lab)
    train(c, "autoencoder", {"code_size": 8, "layers": 1, "nodes": 64}, epochs=3)
    grid, table, caption = c.predict(12, None, 5, "euclidean", api_name="/search")
    with Image.open(grid) as img:
        assert img.size[0] > 6 * 80 and img.size[1] > 80  # the query and five neighbours
    assert table["headers"] == ["rank", "sample", "distance", "label"] and len(table["data"]) == 5
    assert "#12" not in [row[1] for row in table["data"]]
    assert [row[0] for row in table["data"]] == [1, 2, 3, 4, 5]
    assert "The 5 samples nearest to sample #12 of digits" in caption and "left out" in caption
    np.save(tmp_path / "q.npy", digits.x[[12]])
    upload = handle_file(str(tmp_path / "q.npy"))
    grid, same, caption = c.predict(0, upload, 5, "euclidean", api_name="/search")
    assert (
        same["data"] == table["data"] and "a copy of sample #12" in caption and "q.npy" in caption
    )
    frame, caption = c.predict(10, "euclidean", api_name="/search_evaluate")
    assert frame["headers"] == ["search in", "units", "precision@1", "precision@10"]
    assert [row[0] for row in frame["data"]] == ["code", "raw inputs", "PCA", "chance"]
    assert frame["data"][1][1] == 64 and "359 held-out queries" in caption
    with pytest.raises(AppError, match="Sample #5000 is out of range"):
        c.predict(5000, None, 5, "euclidean", api_name="/search")
    flat = client(lab)
    flat.predict(
        "autoencoder", "swissroll", None, {"code_size": 2}, {"epochs": 1}, api_name="/train"
    )
    grid, table, caption = flat.predict(3, None, 4, "cosine", api_name="/search")
    assert grid is None and table["headers"][:4] == ["rank", "sample", "distance", "label"]
    assert table["headers"][4:] == ["x0", "x1", "x2"] and "The query is [" in caption
    gan = client(lab)
    train(gan, "gan", {}, epochs=1)
    with pytest.raises(AppError, match="needs a model that can encode"):
        gan.predict(3, None, 4, "euclidean", api_name="/search")
