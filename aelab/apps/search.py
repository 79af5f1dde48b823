"""Search by similarity: the k nearest neighbours of a query in code space, and precision@k
against raw inputs and PCA at the same size (``aelab search``)."""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field

from ..applications import ApplicationError, ApplicationSpec, AppParams
from ..hookspecs import hookimpl
from .common import (
    add_force_json,
    add_image_size,
    check_batch,
    check_run_data,
    no_source,
    out_path,
    print_summary,
    read_npy_or_image,
)
from .output import atomic_output

HELP = """\
**How it works.** Every sample of the data is encoded once (the *index*: one code per sample;
a VAE gives the mean of its code distribution). A query — a sample picked by its number, or your
own image or array — is encoded the same way, and the samples whose codes lie closest to its code
are its **k nearest neighbours**, listed closest first. The query itself is left out when it is a
sample of the data (picked by number, or a file holding an exact copy of one), so the first hit is
its nearest *other* sample; keep it with *include the query itself*.

**Distances.** *euclidean* is ‖a − b‖ between two codes, in the code's own units: compare
distances within one search, not across models. *cosine* is 1 − cos(a, b): 0 for codes pointing
the same way, 1 for orthogonal ones, 2 for opposite ones; it ignores how long a code is (for
digits, roughly how much ink).

**Is the code any good for search?** With labels, **precision@k** is the share of the k
neighbours that have the query's label, averaged over the queries; *chance* is what a random pick
would score (the share of the query's own class among the searched samples). The same queries are
searched three ways at the same size: in **code** space, in **raw inputs** (every pixel or
feature, the strong baseline) and with **PCA** keeping as many components as the code has units,
fitted on the searched samples (PCA needs no labels, so this favours it, if anything). Queries are
the held-out part of the run's data, searched among the training part, so the model never saw
them; for another dataset (`--data`), or a run that held nothing out, each query is searched
among all the *other* samples (leave-one-out; at most 1,000 queries, drawn with a fixed seed).

**Reading it.** A code that matches raw inputs at a fraction of their size gives the same search
for less memory and time; one that beats PCA has learned non-linear structure. Small images are a
hard test for codes: the 64 raw pixels of the 8×8 digits already reach precision@10 ≈ 0.955 on
held-out queries; an 8-unit autoencoder code reaches 0.928 and PCA with 8 components 0.919, and a
*denoising* autoencoder (σ 0.2) 0.939 — within 0.02 of the pixels at an eighth of their size. A
VAE's mean code is weaker (0.90), likely as its KL term pulls codes towards the prior. Cosine
distance changes little for autoencoder codes and hurts PCA (`benchmarks/bench_search.py`).
Train long enough before judging a model: 100 epochs above, where 20 gave 0.88.
"""

Metric = Literal["euclidean", "cosine"]
RERANK = 16  # candidates beyond k re-ranked with exact float64 distances
CHUNK = 1 << 22  # distance-matrix entries computed at a time


class SearchParams(AppParams):
    """How many neighbours, by which distance, and how many queries score precision@k."""

    k: int = Field(
        10, ge=1, le=1000, title="Neighbours k", description="How many nearest neighbours to list."
    )
    metric: Metric = Field(
        "euclidean",
        title="Distance",
        description="euclidean: ‖a − b‖ between codes; cosine: 1 − cos(a, b), which ignores "
        "how long a code is.",
    )
    include_self: bool = Field(
        False,
        title="Include the query itself",
        description="Keep a query that is a sample of the data in its own results (first, at "
        "distance 0); by default it is left out.",
    )
    batch_size: int = Field(
        1024, ge=1, le=65536, title="Batch size", description="Samples encoded per forward pass."
    )
    queries: int = Field(
        1000,
        ge=1,
        le=100_000,
        title="Evaluation queries",
        description="precision@k without a held-out part: at most this many queries, drawn "
        "with the seed, each searched among all the other samples.",
    )
    seed: int = Field(
        0, ge=0, le=2**31 - 1, title="Seed", description="Draws the evaluation queries."
    )


# -- nearest neighbours ---------------------------------------------------------------------
def _flat(x: np.ndarray) -> np.ndarray:
    return np.asarray(x, dtype=np.float64).reshape(len(x), -1)


def _unit(v: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(v, axis=1, keepdims=True)
    return v / np.maximum(norm, 1e-12)


def _exact(base: np.ndarray, q: np.ndarray, cand: np.ndarray, metric: str) -> np.ndarray:
    """Exact distances from one query to the candidate rows of ``base`` (float64)."""
    rows = base[cand]
    if metric == "cosine":
        return np.clip(1.0 - _unit(rows) @ _unit(q[None])[0], 0.0, 2.0)
    return np.sqrt(np.sum((rows - q) ** 2, axis=1))


def neighbours(
    base: np.ndarray,
    queries: np.ndarray,
    k: int,
    metric: str = "euclidean",
    exclude: Sequence[int | None] | np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` rows of ``base`` nearest to each query row: (indices, distances), both (Q, k),
    closest first (ties by index). ``exclude[i]`` is a row of ``base`` left out for query i (the
    query itself), or None/-1. Candidates are found with float32 products and re-ranked with
    exact float64 distances, so a copy of the query scores exactly 0."""
    base64, q64 = _flat(base), _flat(queries)
    n, nq = len(base64), len(q64)
    excl = np.full(nq, -1, np.int64)
    if exclude is not None:
        excl[:] = [-1 if e is None else int(e) for e in exclude]
    available = n - int(np.any(excl >= 0))
    if k > available:
        raise ApplicationError(
            f"k = {k} asks for more neighbours than the {available} samples that can be "
            f"searched hold; choose k of at most {available}."
        )
    if metric == "cosine":
        b32, q32 = _unit(base64).astype(np.float32), _unit(q64).astype(np.float32)
        b_sq = None
    elif metric == "euclidean":
        b32, q32 = base64.astype(np.float32), q64.astype(np.float32)
        b_sq = np.sum(base64**2, axis=1).astype(np.float32)
    else:
        raise ApplicationError(f"The distance must be euclidean or cosine, not {metric!r}.")
    m = min(n, k + 1 + RERANK)
    idx = np.empty((nq, k), np.int64)
    dist = np.empty((nq, k), np.float64)
    step = max(1, CHUNK // max(n, 1))
    for lo in range(0, nq, step):
        hi = min(nq, lo + step)
        prod = q32[lo:hi] @ b32.T
        approx = -prod if b_sq is None else b_sq[None, :] - 2.0 * prod  # ranks like the distance
        rows = np.arange(hi - lo)
        own = excl[lo:hi]
        approx[rows[own >= 0], own[own >= 0]] = np.inf
        cand = (
            np.argpartition(approx, m - 1, axis=1)[:, :m]
            if m < n
            else np.tile(np.arange(n), (hi - lo, 1))
        )
        for r in rows:
            c = cand[r][cand[r] != own[r]]
            d = _exact(base64, q64[lo + r], c, metric)
            order = np.lexsort((c, d))[:k]
            idx[lo + r], dist[lo + r] = c[order], d[order]
    return idx, dist


# -- results --------------------------------------------------------------------------------
@dataclass
class Hits:
    """One query's nearest neighbours, closest first."""

    query: str  # "#12", or "query.npy[0]"
    indices: np.ndarray  # (k,) sample numbers in the searched data
    distances: np.ndarray  # (k,)
    labels: np.ndarray | None = None  # the neighbours' labels
    query_label: int | None = None
    self_index: int | None = None  # the query's own sample number, when it is one of the data

    @property
    def precision(self) -> float | None:
        """Share of the neighbours with the query's label (None without labels)."""
        if self.labels is None or self.query_label is None:
            return None
        return float(np.mean(self.labels == self.query_label))

    def to_json(self) -> dict[str, Any]:
        """The query and its neighbours as plain numbers."""
        hits = []
        for rank, (i, d) in enumerate(zip(self.indices.tolist(), self.distances.tolist()), 1):
            hit = {"rank": rank, "index": int(i), "distance": round(float(d), 6)}
            if self.labels is not None:
                hit["label"] = int(self.labels[rank - 1])
            hits.append(hit)
        out: dict[str, Any] = {"query": self.query, "self_index": self.self_index}
        if self.query_label is not None:
            out["label"] = self.query_label
            out["precision"] = None if self.precision is None else round(self.precision, 4)
        out["hits"] = hits
        return out


@dataclass
class SearchResult:
    """Every query's neighbours in one index."""

    hits: list[Hits]
    data: str
    n: int  # samples searched
    units: int  # code units
    params: SearchParams
    label_names: list[str] | None = None

    def to_json(self) -> dict[str, Any]:
        """A summary with every query's hits."""
        return {
            "data": self.data,
            "n": self.n,
            "units": self.units,
            "metric": self.params.metric,
            "k": self.params.k,
            "queries": [h.to_json() for h in self.hits],
        }


@dataclass
class Evaluation:
    """precision@1 and precision@k of code, raw-input and PCA search over the same queries."""

    rows: list[dict[str, Any]]  # space, units, precision_at_1, precision_at_k
    chance: float
    protocol: str
    n_queries: int
    n_searched: int
    k: int
    metric: str
    data: str = ""
    details: dict[str, Any] = field(default_factory=dict)

    def row(self, space: str) -> dict[str, Any]:
        """The row of one space: code, raw or pca."""
        return next(r for r in self.rows if r["space"] == space)

    def to_json(self) -> dict[str, Any]:
        """The figures as plain numbers."""
        return {
            "data": self.data,
            "protocol": self.protocol,
            "queries": self.n_queries,
            "searched": self.n_searched,
            "k": self.k,
            "metric": self.metric,
            "chance": round(self.chance, 4),
            "rows": [
                {
                    **r,
                    "precision_at_1": round(r["precision_at_1"], 4),
                    "precision_at_k": round(r["precision_at_k"], 4),
                }
                for r in self.rows
            ],
        }


# -- the core -------------------------------------------------------------------------------
def _check_data(model: Any, data: Any) -> None:
    if tuple(data.sample_shape) != tuple(model.sample_shape):
        raise ApplicationError(
            f"The data {data.name} has samples of shape {list(data.sample_shape)}, but the model "
            f"was trained on {list(model.sample_shape)}."
        )
    if len(data) < 2:
        raise ApplicationError(
            f"The data {data.name} has {len(data)} sample(s); search needs at least 2."
        )


def check_query(model: Any, x: Any, what: str = "The query") -> np.ndarray:
    """Query samples as a batch of the model's sample shape (one sample may lack the batch axis)."""
    return check_batch(model, x, what)


def codes(model: Any, x: np.ndarray, batch_size: int = 1024) -> np.ndarray:
    """Flat codes of ``x`` (N, units)."""
    from .. import inspect as ins

    return ins.encode(model, x, batch_size=batch_size).reshape(len(x), -1).astype(np.float32)


def sample_index(text: Any, n: int, name: str = "the data") -> int:
    """A sample number given as 12 or "#12", checked against ``n`` samples."""
    raw = str(text).strip()
    if not re.fullmatch(r"#?-?\d+", raw):
        raise ApplicationError(
            f"A query number must be a whole number like 12 or #12, not {raw!r}."
        )
    i = int(raw.lstrip("#"))
    if not 0 <= i < n:
        raise ApplicationError(
            f"Sample #{i} is out of range: {name} has {n} samples (#0 to #{n - 1})."
        )
    return i


def _members(x: np.ndarray, data_x: np.ndarray) -> list[int | None]:
    """For each query sample, the first sample of the data it is an exact copy of (or None)."""
    flat = data_x.reshape(len(data_x), -1)
    out: list[int | None] = []
    for q in x.reshape(len(x), -1):
        same = np.flatnonzero(np.all(flat == q, axis=1))
        out.append(int(same[0]) if len(same) else None)
    return out


def search(
    model: Any,
    data: Any,
    params: SearchParams,
    numbers: Sequence[int | str] | None = None,
    samples: np.ndarray | None = None,
    index: np.ndarray | None = None,
    names: Sequence[str] | None = None,
) -> SearchResult:
    """The k nearest neighbours in code space, among the samples of ``data``, of each query:
    either sample ``numbers`` of ``data`` (12 or "#12"), or ``samples`` of the model's sample
    shape (one, or a batch; named by ``names``). ``index`` may pass the codes of ``data``
    computed before."""
    SPEC.require(model)
    _check_data(model, data)
    if (numbers is None) == (samples is None):
        raise ApplicationError("Give the queries either as sample numbers or as samples.")
    if samples is not None:
        x = check_query(model, samples)
        own = _members(x, data.x)
        names = list(names) if names is not None else [f"sample {i}" for i in range(len(x))]
        qlabels: list[int | None] = [None] * len(x)
    else:
        numbers = [sample_index(q, len(data), data.name) for q in numbers]
        if not numbers:
            raise ApplicationError("Give at least one query.")
        x = data.x[numbers]
        own = list(numbers)
        names = [f"#{i}" for i in numbers]
        qlabels = [None if data.labels is None else int(data.labels[i]) for i in numbers]
    for i, o in enumerate(own):  # a copy of a labelled sample has that sample's label
        if o is not None and data.labels is not None:
            qlabels[i] = int(data.labels[o])
    base = codes(model, data.x, params.batch_size) if index is None else index
    # A query that is a sample of the data takes its indexed code: batches round differently.
    q = np.empty((len(x), base.shape[1]), np.float32)
    member = np.array([o is not None for o in own], bool)
    q[member] = base[[o for o in own if o is not None]]
    if not member.all():
        q[~member] = codes(model, x[~member], params.batch_size)
    exclude = None if params.include_self else own
    idx, dist = neighbours(base, q, params.k, params.metric, exclude)
    hits = [
        Hits(
            names[i],
            idx[i],
            dist[i],
            None if data.labels is None else data.labels[idx[i]],
            qlabels[i],
            own[i],
        )
        for i in range(len(x))
    ]
    return SearchResult(hits, data.name, len(data), int(base.shape[1]), params, data.label_names)


def _precision(
    labels: np.ndarray, q_labels: np.ndarray, idx: np.ndarray, k: int
) -> tuple[float, float]:
    same = labels[idx] == q_labels[:, None]
    return float(same[:, 0].mean()), float(same[:, :k].mean())


def evaluate(
    model: Any,
    data: Any,
    params: SearchParams,
    queries: Any = None,
    progress: Callable[[float, str], None] | None = None,
) -> Evaluation:
    """precision@1 and precision@k of search in code space, in raw inputs and with PCA at the
    code's size, over the same queries.

    With ``queries`` (a labelled dataset, e.g. the held-out part) each is searched among the
    samples of ``data`` (e.g. the training part). Without, up to ``params.queries`` samples of
    ``data`` drawn with ``params.seed`` are each searched among all the *other* samples
    (leave-one-out). PCA is fitted on ``data``, the searched samples."""
    from sklearn.decomposition import PCA

    SPEC.require(model)
    _check_data(model, data)
    step = progress or (lambda _f, _t: None)
    if data.labels is None or (queries is not None and queries.labels is None):
        name = data.name if data.labels is None else queries.name
        raise ApplicationError(
            f"precision@k needs labels, and {name} has none; searching works without them."
        )
    if queries is not None:
        _check_data(model, queries)
        qx, qy = queries.x, queries.labels
        exclude = None
        protocol = (
            f"{len(qx)} held-out queries, each searched among the {len(data)} samples of "
            f"{data.name}"
        )
        same = (qy[:, None] == data.labels[None, :]).mean(axis=1)
    else:
        pick = np.arange(len(data))
        if len(data) > params.queries:
            pick = np.sort(
                np.random.default_rng(params.seed).choice(len(data), params.queries, replace=False)
            )
        qx, qy = data.x[pick], data.labels[pick]
        exclude = pick
        protocol = (
            f"leave-one-out: {len(pick)} queries from {data.name}, each searched among the "
            f"{len(data) - 1} other samples"
        )
        counts = np.bincount(data.labels, minlength=int(data.labels.max()) + 1)
        same = (counts[qy] - 1) / (len(data) - 1)
    k = params.k
    step(0.0, "encoding the data")
    base_codes = codes(model, data.x, params.batch_size)
    q_codes = codes(model, qx, params.batch_size)
    units = int(base_codes.shape[1])
    raw_base, raw_q = _flat(data.x), _flat(qx)
    n_pca = int(max(1, min(units, raw_base.shape[1], len(raw_base))))
    spaces = [("code", units, base_codes, q_codes)]
    spaces.append(("raw", raw_base.shape[1], raw_base, raw_q))
    step(0.2, f"fitting PCA with {n_pca} components")
    pca = PCA(n_pca, random_state=0).fit(raw_base)
    spaces.append(("pca", n_pca, pca.transform(raw_base), pca.transform(raw_q)))
    rows = []
    for i, (space, dims, b, q) in enumerate(spaces):
        step(0.3 + 0.7 * i / len(spaces), f"searching in {space} space")
        idx, _ = neighbours(b, q, k, params.metric, exclude)
        p1, pk = _precision(data.labels, qy, idx, k)
        rows.append(
            {"space": space, "units": int(dims), "precision_at_1": p1, "precision_at_k": pk}
        )
    step(1.0, "done")
    return Evaluation(
        rows,
        float(np.mean(same)),
        protocol,
        len(qx),
        len(data) - (1 if queries is None else 0),
        k,
        params.metric,
        data.name,
        {"pca_explained": float(pca.explained_variance_ratio_.sum())},
    )


# -- files ----------------------------------------------------------------------------------
def read_query(path: Path, model: Any, scaling: dict | None) -> np.ndarray:
    """Query samples from a .npy (scaled like the data; one sample or a batch) or, for an image
    model, a PNG or JPEG (mapped to [0, 1] like ``aelab infer`` does)."""
    return read_npy_or_image(
        path,
        model,
        scaling,
        what="query",
        instead="pass the query as a .npy file.",
        wrong_kind="A query must be a sample number (like 12 or #12), a .npy file or a PNG/JPEG "
        f"image, not '{path.name}'.",
    )


def write(result: SearchResult, out: Path, force: bool = False) -> Path:
    """One CSV row per neighbour: query, rank, index, distance (and label), written atomically."""
    out = Path(out)
    if out.suffix.lower() != ".csv":
        raise ApplicationError(f"Write the hits to a .csv file, not {out.name}.")
    labelled = any(h.labels is not None for h in result.hits)
    lines = ["query,rank,index,distance" + (",label" if labelled else "")]
    for h in result.hits:
        for rank, (i, d) in enumerate(zip(h.indices.tolist(), h.distances.tolist()), 1):
            row = f"{h.query},{rank},{i},{d:.8g}"
            lines.append(row + (f",{int(h.labels[rank - 1])}" if labelled else ""))
    with atomic_output(out, force) as tmp:
        with open(tmp, "w", encoding="utf-8", newline="") as fh:
            fh.write("\n".join(lines) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
    return out


# -- the command ----------------------------------------------------------------------------
def _data(args: argparse.Namespace, run: Any, split: bool) -> tuple[Any, Any]:
    """(searched, queries): --data, or the run's own data (split into training and held-out
    parts when ``split`` and the run held some out; queries None otherwise)."""
    from ..data import load_data, load_run_data

    if args.data:
        data = load_data(args.data, image_size=args.image_size)
        held = None
    else:
        if not run.data_meta.get("source"):
            raise no_source()
        fraction = run.config.val_fraction if split else 0.0
        data, held = load_run_data(run.data_meta, fraction, run.config.seed)
    check_run_data(data, run)
    return data, held


def _label(value: int | None, names: list[str] | None) -> str:
    if value is None:
        return "-"
    return names[value] if names and 0 <= value < len(names) else str(value)


def _text_hits(summary: dict[str, Any], result: SearchResult) -> str:
    lines = [
        f"run    {summary['run']}",
        f"data   {result.data}: {result.n} samples searched in {result.units} code units, "
        f"{result.params.metric} distance",
    ]
    for h in result.hits:
        head = f"query  {h.query}"
        if h.query_label is not None:
            head += f" (label {_label(h.query_label, result.label_names)})"
        if h.self_index is not None and not h.query.startswith("#"):
            head += f", a copy of sample #{h.self_index}"
        if h.self_index is not None:
            head += ", itself included" if result.params.include_self else ", itself left out"
        if h.precision is not None:
            head += f"; {h.precision:.0%} of its {len(h.indices)} neighbours share its label"
        lines += ["", head, "  rank  sample    distance  label"]
        for rank, (i, d) in enumerate(zip(h.indices.tolist(), h.distances.tolist()), 1):
            lab = "-" if h.labels is None else _label(int(h.labels[rank - 1]), result.label_names)
            lines.append(f"  {rank:>4}  #{i:<7} {d:>9.4f}  {lab}")
    if summary.get("out"):
        lines += ["", f"written to {summary['out']}"]
    return "\n".join(lines)


SPACE_NAMES = {"code": "code", "raw": "raw inputs", "pca": "PCA"}


def _text_eval(summary: dict[str, Any]) -> str:
    k = summary["k"]
    lines = [
        f"run       {summary['run']}",
        f"data      {summary['data']}",
        f"protocol  {summary['protocol']}; {summary['metric']} distance",
        "",
        f"  search in       units  precision@1  precision@{k}",
    ]
    for r in summary["rows"]:
        name = SPACE_NAMES[r["space"]]
        lines.append(
            f"  {name:<14} {r['units']:>6}  {r['precision_at_1']:>11.4f}  {r['precision_at_k']:>12.4f}"
        )
    lines.append(
        f"  {'chance':<14} {'':>6}  {summary['chance']:>11.4f}  {summary['chance']:>12.4f}"
    )
    return "\n".join(lines)


def cmd_search(args: argparse.Namespace) -> int:
    """``aelab search RUN QUERY...`` or ``aelab search RUN --evaluate``."""
    from ..runs import load_run

    if args.evaluate and args.query:
        raise ApplicationError("Pass either queries to search or --evaluate, not both.")
    if not args.evaluate and not args.query:
        raise ApplicationError(
            "Name a query (a sample number like 12 or #12, a .npy file or a PNG image), or pass "
            "--evaluate to measure precision@k."
        )
    if args.out and args.evaluate:
        raise ApplicationError("--out writes search hits; --evaluate prints its table only.")
    out = out_path(args)
    values: dict[str, Any] = {
        "k": args.k,
        "metric": args.metric,
        "include_self": args.include_self,
        "batch_size": args.batch_size,
        "seed": args.seed,
    }
    if args.queries is not None:
        values["queries"] = args.queries
    params = SPEC.validate_params(values)
    run = load_run(args.run)
    SPEC.require(run.model)
    if args.evaluate:
        data, held = _data(args, run, split=True)
        result = evaluate(run.model, data, params, queries=held)
        summary = {"run": run.run_id, **result.to_json()}
        print_summary(summary, args.json, lambda: _text_eval(summary))
        return 0
    data, _ = _data(args, run, split=False)
    numbers: list[int] = []
    arrays: list[np.ndarray] = []
    names: list[str] = []
    for q in args.query:
        if re.fullmatch(r"#?-?\d+", q.strip()):
            numbers.append(sample_index(q, len(data), data.name))
        else:
            path = Path(q)
            x = check_query(
                run.model,
                read_query(path, run.model, run.data_meta.get("scaling")),
                f"The query {path.name}",
            )
            arrays.append(x)
            names += [path.name] if len(x) == 1 else [f"{path.name}[{i}]" for i in range(len(x))]
    index = codes(run.model, data.x, params.batch_size)
    hits: list[Hits] = []
    if numbers:
        hits += search(run.model, data, params, numbers=numbers, index=index).hits
    if arrays:
        hits += search(
            run.model, data, params, samples=np.concatenate(arrays), index=index, names=names
        ).hits
    result = SearchResult(hits, data.name, len(data), int(index.shape[1]), params, data.label_names)
    if out is not None:
        write(result, out, args.force)
    summary = {"run": run.run_id, **result.to_json(), "out": args.out}
    print_summary(summary, args.json, lambda: _text_hits(summary, result))
    return 0


def add_command(sub: argparse._SubParsersAction) -> None:
    """Add ``aelab search``."""
    s = sub.add_parser(
        "search",
        help="find the nearest neighbours of a query in code space, or measure precision@k",
        description="Encode the data, encode each QUERY, and list the k samples whose codes are "
        "nearest. A QUERY is a sample number of the data (12 or #12; write ./12 for a file "
        "named 12), a .npy file (one sample, or a batch: each row is a query, scaled like the "
        "data) or a PNG/JPEG image. The query itself is left out when it is a sample of the "
        "data. With --evaluate (and labelled data): precision@1 and precision@k of search in "
        "code space, in raw inputs and with PCA at the code's size, the run's held-out part "
        "searched among its training part (with --data: leave-one-out). Examples: "
        "aelab search RUN 12 -k 5; aelab search RUN digit.png --out hits.csv; "
        "aelab search RUN --evaluate --metric cosine.",
    )
    s.add_argument("run", help="run id (or folder)")
    s.add_argument("query", nargs="*", help="sample numbers (12 or #12), .npy files or images")
    s.add_argument(
        "--data",
        help="data to search (default: the run's own data, whose held-out part --evaluate "
        "searches among its training part)",
    )
    s.add_argument("-k", type=int, default=10, help="neighbours per query (default 10)")
    s.add_argument(
        "--metric",
        choices=["euclidean", "cosine"],
        default="euclidean",
        help="distance between codes",
    )
    s.add_argument(
        "--include-self",
        action="store_true",
        help="keep a query that is a sample of the data in its own results",
    )
    s.add_argument(
        "--evaluate", action="store_true", help="print precision@k: code vs raw inputs vs PCA"
    )
    s.add_argument(
        "--queries",
        type=int,
        help="--evaluate leave-one-out: at most this many queries (default 1000)",
    )
    s.add_argument("--seed", type=int, default=0, help="draws the --evaluate queries (default 0)")
    s.add_argument(
        "--batch-size", type=int, default=1024, help="samples encoded per forward pass (1024)"
    )
    add_image_size(s)
    s.add_argument(
        "--out", help="write one CSV row per neighbour: query, rank, index, distance, label"
    )
    add_force_json(s, "print JSON")
    s.set_defaults(func=cmd_search)


SPEC = ApplicationSpec(
    id="search",
    name="Similarity search",
    description="Finds the samples nearest to a query in code space and measures precision@k "
    "against search in raw inputs and with PCA at the same size.",
    params=SearchParams,
    run=lambda model, data, params: evaluate(model, data, params),
    needs=frozenset({"encode"}),
    cli=add_command,
    panel="aelab.ui.panels.search:build",
    help=HELP,
)


@hookimpl
def register_applications(register):
    """Register similarity search."""
    register(SPEC)
