"""Anomaly detection: per-sample scores, a threshold, and AUROC / average precision with labels.

The core (no UI): :func:`scores`, :func:`error_maps`, :func:`detect` and the export record the
torch-free runtime reads (``ExportedModel.score`` / ``is_anomaly``). The ``aelab anomaly``
command lives in :mod:`aelab.apps.anomaly_cli`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from pydantic import Field

from ..applications import ApplicationError, ApplicationSpec, AppParams
from ..hookspecs import hookimpl

HELP = """\
**The idea.** Train a model on normal data only. It learns to reproduce what normal looks like,
so an input unlike anything it saw is reproduced badly, and that badness is its **anomaly score**
(higher = more anomalous). Fraud among card payments, a failing machine among sensor readings, a
tumour among healthy scans: the anomalies need no labels and may be of kinds never seen before.

**Scores.**
- *reconstruction*: the mean squared error between an input and the model's reconstruction,
  per sample, in the [0, 1] scale of the data. The error map (squared error per pixel or
  feature) shows *where* an input is unusual.
- *elbo*: for a VAE, the negative evidence lower bound with the mean code: reconstruction
  log-likelihood (its training loss, summed) plus KL(q(z|x) ‖ N(0, I)), i.e. also how far the code
  is from the prior.
- *critic*: for a GAN, the discriminator's logit negated: low "realness" = anomalous. The
  discriminator is trained to tell real from *generated*, not normal from abnormal, so this score
  is the weakest of the three.
- *auto* takes reconstruction whenever the model reconstructs, else the critic. On the one-class
  digits benchmark the VAE's reconstruction error ranks better than its ELBO (mean AUROC 0.989 vs
  0.980), so auto does not pick the ELBO.

**Thresholds** turn scores into decisions (flagged = score at or above it):
- *contamination*: you expect a share c of the scored data to be anomalous; the round(c·N)
  highest scores are flagged (the (1 − c) percentile of the scored data).
- *normal*: the (1 − c) quantile of the scores on known-normal data (the run's validation
  split): about a share c of normal samples is flagged, a false-positive rate you choose, whatever
  the mix of the scored data.
- *best F1*: with labels, the threshold that maximises F1 = 2·precision·recall / (precision +
  recall), anomalies being the positives. It looks at the answers, so it is an upper bound for
  the other two, not a threshold to deploy.

**Reading the figures.** With labels and the *normal classes* named (the others count as
anomalies), **AUROC** is the probability that a random anomaly scores above a random normal
sample: 0.5 is chance, 1.0 perfect, independent of the threshold and of how rare anomalies are.
The **ROC curve** plots the true-positive rate against the false-positive rate over all
thresholds. **Average precision** (the area under the precision–recall curve) does depend on how
rare anomalies are, which makes it the harsher figure when they are few: its chance level is their
share of the data.

**The one-class protocol.** Train on one class only (`aelab train autoencoder --keep-labels 3`),
then score a mix of held-out normal samples and every other class (`aelab anomaly RUN`; the kept
classes are the default normal ones). PCA's reconstruction error at the same code size is the
baseline to beat: on the 8×8 digits it reaches a mean AUROC of 0.995 at code 4. An autoencoder
beats it with a small code, where its non-linearity helps most (0.997), and an ensemble of five
seeds more so (0.9973: half of PCA's ranking errors; `benchmarks/bench_anomaly.py`).

**Pitfalls.** A model that generalises too well reconstructs anomalies too (an overcomplete code,
too many epochs); anomalies that are "simpler" than the normal data (a 1 among 8s) can score low.
Scores of two models are not on the same scale: compare thresholds within one model only. An export
carries the score, its normalisation and a threshold set on the run's normal data, so
`aelab.runtime` gives `score()` and `is_anomaly()` without torch.
"""

SCORE_KINDS = ("reconstruction", "elbo", "critic")
THRESHOLDS = ("contamination", "normal", "best_f1")
BATCH = 1024
EXPORT_CONTAMINATION = 0.05  # the exported threshold flags about 5% of normal data


class AnomalyParams(AppParams):
    """How to score and where to draw the line."""

    score: Literal["auto", "reconstruction", "elbo", "critic"] = Field(
        "auto",
        title="Score",
        description="reconstruction: mean squared reconstruction error; elbo: a VAE's negative "
        "ELBO; critic: a GAN discriminator's logit, negated; auto: reconstruction when the model "
        "reconstructs, else the critic.",
    )
    threshold: Literal["contamination", "normal", "best_f1"] = Field(
        "contamination",
        title="Threshold",
        description="contamination: flag that share of the scored data; normal: the (1 - "
        "contamination) quantile of scores on normal data; best_f1: the threshold with the best "
        "F1 against the labels.",
    )
    contamination: float = Field(
        0.05,
        ge=0.0,
        le=0.5,
        title="Contamination",
        description="The expected share of anomalies: the share of the scored data flagged, or "
        "of normal data with the normal threshold (a false-positive rate).",
    )
    normal_labels: list[int] | None = Field(
        None,
        title="Normal classes",
        description="Label values that count as normal (the rest are anomalies), for AUROC, "
        "average precision and best F1; empty without labels.",
    )


@dataclass
class AnomalyResult:
    """Scores of every sample, the threshold, what it flags and, with labels, how well it ranks."""

    scores: np.ndarray  # (N,) float64, higher = more anomalous
    threshold: float
    flagged: np.ndarray  # (N,) bool: score >= threshold
    score_kind: str
    threshold_method: str
    n: int
    n_flagged: int
    auroc: float | None = None
    average_precision: float | None = None
    roc: tuple[np.ndarray, np.ndarray] | None = None  # (false-positive rate, true-positive rate)
    contamination: float = 0.05
    normal_labels: list[int] | None = None
    anomalous: np.ndarray | None = field(default=None, repr=False)  # (N,) bool, from the labels
    precision: float | None = None  # of the flags at the threshold, with labels
    recall: float | None = None
    f1: float | None = None
    note: str = ""

    def to_json(self) -> dict[str, Any]:
        """Counts, threshold and metrics, without the per-sample arrays."""
        s = self.scores
        out: dict[str, Any] = {
            "score": self.score_kind,
            "threshold_method": self.threshold_method,
            "threshold": _num(self.threshold),
            "contamination": self.contamination,
            "n": self.n,
            "n_flagged": self.n_flagged,
            "scores": {
                "min": _num(s.min()) if s.size else None,
                "median": _num(np.median(s)) if s.size else None,
                "max": _num(s.max()) if s.size else None,
            },
            "normal_labels": self.normal_labels,
            "n_anomalous": None if self.anomalous is None else int(self.anomalous.sum()),
            "auroc": _num(self.auroc),
            "average_precision": _num(self.average_precision),
            "precision": _num(self.precision),
            "recall": _num(self.recall),
            "f1": _num(self.f1),
        }
        if self.note:
            out["note"] = self.note
        return out


def _num(value: Any) -> float | None:
    """A JSON-able float (None stays None; infinities, which JSON lacks, become None)."""
    if value is None:
        return None
    value = float(value)
    return value if np.isfinite(value) else None


# -- what a model offers -----------------------------------------------------------------------
def _caps(model: Any) -> set[str]:
    return set(getattr(model, "capabilities", ()))


def critic_graph(model: Any) -> Any | None:
    """The model's graph with the critic role that takes data (a GAN's discriminator), or None."""
    graphs = getattr(model, "graphs", None)
    if graphs is None:
        return None
    try:
        declared = graphs()
    except Exception:  # a model whose graphs cannot be built has no usable critic
        return None
    for graph in declared:
        if (
            getattr(graph, "role", None) == "critic"
            and graph.input_range is not None
            and tuple(graph.input_shape) == tuple(getattr(model, "sample_shape", ()))
        ):
            return graph
    return None


def _has_elbo(model: Any) -> bool:
    """A variational model: an encoder giving (mean, log-variance) and a decoder of logits."""
    return (
        "reconstruct" in _caps(model)
        and callable(getattr(model, "encode_stats", None))
        and callable(getattr(model, "decode_logits", None))
    )


def available_scores(model: Any) -> list[str]:
    """The score kinds this model can give, best first."""
    kinds = []
    if "reconstruct" in _caps(model):
        kinds.append("reconstruction")
    if _has_elbo(model):
        kinds.append("elbo")
    if critic_graph(model) is not None:
        kinds.append("critic")
    return kinds


def serves(model: Any) -> str | None:
    """None when the model can score anomalies, else why not (one sentence)."""
    if available_scores(model):
        return None
    can = ", ".join(sorted(_caps(model))) or "nothing"
    return (
        "Anomaly detection needs a model that reconstructs its input (an autoencoder, a VAE) or "
        f"has a discriminator that judges data (a GAN); this one can only {can}."
    )


_NEEDS = {
    "reconstruction": "a model that reconstructs its input",
    "elbo": "a variational model (an encoder giving a mean and a log-variance, like the VAE)",
    "critic": "a model with a discriminator that judges data (a GAN)",
}


def resolve_score(model: Any, kind: str = "auto") -> str:
    """The score kind ``kind`` means for this model; auto: reconstruction, else the critic."""
    kinds = available_scores(model)
    if not kinds:
        raise ApplicationError(serves(model))
    if kind == "auto":
        return "reconstruction" if "reconstruction" in kinds else kinds[0]
    if kind not in SCORE_KINDS:
        raise ApplicationError(
            f"Unknown anomaly score '{kind}'; choose auto, {', '.join(SCORE_KINDS)}."
        )
    if kind not in kinds:
        raise ApplicationError(
            f"The {kind} score needs {_NEEDS[kind]}; this model offers {', '.join(kinds)}."
        )
    return kind


# -- scoring -------------------------------------------------------------------------------------
def _batch(model: Any, x: Any) -> np.ndarray:
    """``x`` as a float32 batch of the model's sample shape (one sample gets a batch axis)."""
    arr = np.asarray(x, dtype=np.float32)
    shape = tuple(model.sample_shape)
    if arr.shape == shape:
        arr = arr[None]
    if arr.shape[1:] != shape:
        raise ApplicationError(
            f"The data has samples of shape {list(arr.shape[1:])}, but the model was trained on "
            f"{list(shape)}."
        )
    return arr


def _device(model: Any) -> Any:
    import torch

    return next(iter(model.parameters()), torch.empty(0)).device


def _mse(out: Any, x: np.ndarray) -> np.ndarray:
    """Per-sample mean squared error in float64, as the runtime computes it."""
    diff = np.asarray(out, dtype=np.float64) - x.astype(np.float64)
    return (diff**2).reshape(len(x), -1).mean(axis=1)


def _run_batches(model: Any, x: np.ndarray, fn: Any) -> np.ndarray:
    """``fn(model, tensor batch, numpy batch)`` over ``x`` in eval mode, without gradients."""
    import torch

    device = _device(model)
    was_training = model.training
    model.eval()
    out = []
    try:
        with torch.no_grad():
            for i in range(0, len(x), BATCH):
                part = x[i : i + BATCH]
                out.append(fn(model, torch.as_tensor(part, device=device), part))
    finally:
        model.train(was_training)
    return np.concatenate(out) if out else np.zeros(0)


def _reconstruction(model: Any, xb: Any, part: np.ndarray) -> np.ndarray:
    return _mse(model.reconstruct(xb).float().cpu().numpy(), part)


def _elbo(model: Any, xb: Any, part: np.ndarray) -> np.ndarray:
    import torch.nn.functional as F

    mean, logvar = model.encode_stats(xb)
    logits = model.decode_logits(mean)
    if getattr(model.params, "loss", "bce") == "bce":
        rec = F.binary_cross_entropy_with_logits(logits, xb, reduction="none")
    else:
        rec = (logits.sigmoid() - xb).pow(2)
    kl = 0.5 * (mean.pow(2) + logvar.exp() - logvar - 1).sum(dim=1)
    total = rec.flatten(1).sum(dim=1) + kl
    return total.float().cpu().numpy().astype(np.float64)  # float64 on the CPU: MPS has none


def _critic(graph: Any) -> Any:
    def negated_logit(model: Any, xb: Any, part: np.ndarray) -> np.ndarray:
        logits = graph.module(xb).float().cpu().numpy().astype(np.float64)
        return -logits.reshape(len(part), -1)[:, 0]

    return negated_logit


def scores(
    model: Any, x: np.ndarray, y: np.ndarray | None = None, kind: str = "auto"
) -> np.ndarray:
    """Per-sample anomaly scores (higher = more anomalous), float64 (N,); batched, in eval mode,
    without gradients, on the model's device. ``y`` is accepted for models that take labels;
    none of the built-in score kinds needs it."""
    kind = resolve_score(model, kind)
    if kind == "critic":
        fn = _critic(critic_graph(model))
    else:
        fn = _reconstruction if kind == "reconstruction" else _elbo
    return _run_batches(model, _batch(model, x), fn)


def error_maps(model: Any, x: np.ndarray) -> np.ndarray:
    """Squared reconstruction error per value, shaped like ``x`` (float32)."""
    if "reconstruct" not in _caps(model):
        raise ApplicationError(
            "Error maps need a model that reconstructs its input; this one has none to compare."
        )
    arr = _batch(model, x)

    def squared(m: Any, xb: Any, part: np.ndarray) -> np.ndarray:
        return (m.reconstruct(xb).float().cpu().numpy() - part) ** 2

    maps = _run_batches(model, arr, squared).astype(np.float32)
    return maps.reshape(np.shape(x)) if np.shape(x) == tuple(model.sample_shape) else maps


# -- thresholds and metrics --------------------------------------------------------------------
def contamination_threshold(s: np.ndarray, contamination: float) -> float:
    """The score that flags the round(contamination · N) highest scores (none for 0)."""
    k = int(np.floor(contamination * len(s) + 0.5))
    if k <= 0 or not len(s):
        return float(np.nextafter(np.max(s), np.inf)) if len(s) else float("inf")
    return float(np.sort(s)[::-1][min(k, len(s)) - 1])


def normal_threshold(normal_scores: np.ndarray, contamination: float) -> float:
    """The (1 - contamination) quantile of scores on normal data; where it falls exactly on one
    of them, halfway to the next higher one, so that no normal sample sits on the threshold
    (where float rounding in another runtime could decide it either way)."""
    if not len(normal_scores):
        raise ApplicationError("The normal data is empty, so no threshold can be set on it.")
    q = float(np.quantile(normal_scores, 1.0 - contamination))
    above = normal_scores[normal_scores > q]
    if np.any(normal_scores == q) and above.size:
        q = float((q + above.min()) / 2)
    return q


def best_f1_threshold(s: np.ndarray, anomalous: np.ndarray) -> float:
    """The threshold (one of the scores) whose flags have the best F1 against the truth."""
    order = np.argsort(-s, kind="stable")
    ranked, truth = s[order], anomalous[order].astype(np.int64)
    tp = np.cumsum(truth)  # true positives when the top k = 1..N are flagged
    k = np.arange(1, len(s) + 1)
    f1 = 2 * tp / (k + truth.sum())
    # Only cuts between different scores are thresholds (ties are flagged together).
    valid = np.append(ranked[:-1] > ranked[1:], True)
    best = int(np.argmax(np.where(valid, f1, -1.0)))
    return float(ranked[best])


def _truth(data: Any, normal_labels: list[int] | None) -> tuple[np.ndarray | None, list | None]:
    """Which samples are anomalies by the labels (None without normal classes)."""
    from ..data import label_values

    if normal_labels is None:
        return None, None
    values = label_values(data, normal_labels, "the normal classes")
    return ~np.isin(data.labels, values), values


def _metrics(s: np.ndarray, anomalous: np.ndarray, flagged: np.ndarray) -> dict[str, Any]:
    from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve

    fpr, tpr, _ = roc_curve(anomalous, s)
    tp = int(np.sum(flagged & anomalous))
    precision = tp / max(int(flagged.sum()), 1)
    recall = tp / max(int(anomalous.sum()), 1)
    return {
        "auroc": float(roc_auc_score(anomalous, s)),
        "average_precision": float(average_precision_score(anomalous, s)),
        "roc": (fpr, tpr),
        "precision": precision,
        "recall": recall,
        "f1": 2 * precision * recall / (precision + recall) if precision + recall else 0.0,
    }


def detect(
    model: Any, data: Any, params: AnomalyParams | dict | None = None, normal: Any = None
) -> AnomalyResult:
    """Score every sample of ``data``, set the threshold, flag, and measure against the labels
    when ``params.normal_labels`` names the normal classes. ``normal``: known-normal data for
    the normal threshold (the run's validation split, see :func:`normal_data`)."""
    SPEC.require(model)
    params = SPEC.validate_params(params)
    if not len(data):
        raise ApplicationError(f"Dataset '{data.name}' is empty; there is nothing to score.")
    kind = resolve_score(model, params.score)
    anomalous, normal_values = _truth(data, params.normal_labels)
    s = scores(model, data.x, data.labels, kind)
    both = anomalous is not None and 0 < int(anomalous.sum()) < len(s)
    note = ""
    if anomalous is not None and not both:
        what = "anomalous" if anomalous.all() else "normal"
        note = (
            f"Every sample of '{data.name}' is {what} by its labels, so AUROC and average "
            "precision are undefined; score a mix of normal and other classes."
        )
    if params.threshold == "contamination":
        threshold = contamination_threshold(s, params.contamination)
    elif params.threshold == "normal":
        if normal is None:
            raise ApplicationError(
                "The normal threshold needs known-normal data to set it on (a run's validation "
                "split); pass it, or choose the contamination threshold."
            )
        normal_x = getattr(normal, "x", normal)
        threshold = normal_threshold(scores(model, normal_x, kind=kind), params.contamination)
    else:
        if anomalous is None:
            raise ApplicationError(
                "The best-F1 threshold needs labels: name the normal classes (the others count "
                "as anomalies)."
            )
        if not both:
            raise ApplicationError(
                "The best-F1 threshold needs both normal samples and anomalies, but every "
                f"sample of '{data.name}' is {'anomalous' if anomalous.all() else 'normal'} by "
                "its labels."
            )
        threshold = best_f1_threshold(s, anomalous)
    flagged = s >= threshold
    result = AnomalyResult(
        scores=s,
        threshold=float(threshold),
        flagged=flagged,
        score_kind=kind,
        threshold_method=params.threshold,
        n=len(s),
        n_flagged=int(flagged.sum()),
        contamination=params.contamination,
        normal_labels=normal_values,
        anomalous=anomalous,
        note=note,
    )
    if both:
        for key, value in _metrics(s, anomalous, flagged).items():
            setattr(result, key, value)
    return result


# -- runs and exports ----------------------------------------------------------------------------
def normal_data(run: Any) -> Any:
    """A run's known-normal held-out data: its validation split (of its kept classes), or its
    training data when it held nothing out."""
    from ..data import load_run_data

    train, val = load_run_data(run.data_meta, run.config.val_fraction, run.config.seed)
    return val if val is not None else train


def default_normal_labels(data_meta: dict | None) -> list[int] | None:
    """The classes a run was trained on with ``--keep-labels`` (the normal ones), or None."""
    kept = (data_meta or {}).get("kept_labels")
    return [int(v) for v in kept] if kept else None


def _runtime_graph(model: Any) -> tuple[str, Any]:
    """The score the torch-free runtime can compute and the graph it runs through."""
    graphs = {g.role: g for g in reversed(model.graphs())}  # each role's first graph
    if "reconstruct" in _caps(model) and "autoencoder" in graphs:
        return "reconstruction", graphs["autoencoder"]
    critic = critic_graph(model)
    if critic is not None:
        return "critic", critic
    raise ApplicationError(
        "This model exports no graph the runtime can score anomalies with (an autoencoder "
        "graph, or a critic that takes data)."
    )


def export_record(model: Any, data: Any, run: Any = None) -> dict[str, Any]:
    """What an export records so ``aelab.runtime`` scores without torch: the score and the graph
    it runs through, the scores' mean and std on ``data`` (the run's held-out normal data) and
    the threshold flagging about 5% of it."""
    kind, graph = _runtime_graph(model)
    if data is None or not len(data):
        raise ApplicationError(
            "The run's data could not be loaded again, so no threshold was set on normal data."
        )
    normal_scores = scores(model, data.x, kind=kind)
    held_out = run is not None and run.config.val_fraction > 0
    std = float(np.std(normal_scores))
    return {
        "score": kind,
        "graph": graph.name,
        "output": graph.output_names[0],
        "how": "reconstruction: mean over all values of (output - input)^2 per sample, the "
        "input in [0, 1]; critic: minus the first output per sample. Flagged: score >= threshold.",
        "normalization": {
            "mean": float(np.mean(normal_scores)),
            "std": std if std > 0 else 1.0,
        },
        "threshold": normal_threshold(normal_scores, EXPORT_CONTAMINATION),
        "threshold_method": "normal",
        "contamination": EXPORT_CONTAMINATION,
        "normal_data": {
            "name": data.name,
            "part": "validation split" if held_out else "training data",
            "n": len(data),
            "labels": getattr(data, "kept_labels", None),
        },
        "torch_score": resolve_score(model, "auto"),
    }


def _add_command(sub: Any) -> None:
    from .anomaly_cli import add_command

    add_command(sub)


SPEC = ApplicationSpec(
    id="anomaly",
    name="Anomaly detection",
    description="Scores how unusual each sample is by its reconstruction error (or a GAN's "
    "discriminator), flags those above a threshold, and measures AUROC against labels.",
    params=AnomalyParams,
    run=detect,
    needs=frozenset(),
    serves=serves,
    cli=_add_command,
    panel="aelab.ui.panels.anomaly:build",
    export_record=export_record,
    help=HELP,
)


@hookimpl
def register_applications(register):
    """Register anomaly detection."""
    register(SPEC)
