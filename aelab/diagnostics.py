"""Collapse diagnostics after training: posterior collapse (the code carries no information) and
mode collapse (generated samples nearly identical).

Which checks run follows from what a model can do, never from its id: a model with a Gaussian
posterior (``posterior(batch)`` or ``encode_stats(x)`` giving mean and log-variance) or an
encoder whose validation reports a ``kl`` term gets the posterior check; a model that samples
gets the mode check. Both are cheap (a few hundred samples; well under a second on digits), so
the lab and the CLI can run them after every training::

    from aelab.diagnostics import diagnose

    for warning in diagnose(model, held_out_data):
        print(warning.code, warning.message, warning.figures)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from .models import BATCH_DTYPES

# The codes carry less than this many nats about the input on average (the mean KL bounds the
# mutual information I(x; z)): they tell apart fewer than e ≈ 2.7 kinds of input.
MIN_KL_NATS = 1.0
ACTIVE_UNIT_NATS = 0.01  # a unit whose mean KL exceeds this counts as active (Burda et al. 2016)
# Samples' mean pairwise distance over the data's, in the data's principal subspace.
MIN_DIVERSITY = 0.35
# Distinct nearest data examples of the samples over those of as many real samples.
MIN_COVERAGE = 0.05
N_SAMPLES = 256
MAX_POSTERIOR = 1024  # held-out samples read for the posterior check
MAX_REFERENCE = 2048  # data examples the samples' nearest neighbours are looked up among
VARIANCE_KEPT = 0.8  # the principal subspace keeps this share of the data's variance


@dataclass(frozen=True)
class Diagnosis:
    """One problem found in a trained model, for the page and the CLI."""

    code: str  # "posterior_collapse" or "mode_collapse"
    message: str  # one plain sentence: what is wrong and what to try
    figures: dict[str, Any] = field(default_factory=dict)  # the numbers behind it


def diagnose(model: Any, data: Any, seed: int = 0) -> list[Diagnosis]:
    """The collapse warnings for ``model`` on ``data`` (best the held-out split): empty when
    none applies. ``data`` is a Dataset, or an array/tensor of samples."""
    figures = collapse_figures(model, data, seed)
    out = []
    post = figures.get("posterior")
    if post is not None and post["collapsed"]:
        units = f" over its {post['units']} units" if post.get("units") else ""
        out.append(
            Diagnosis(
                "posterior_collapse",
                f"The code carries almost no information about the input (a KL of "
                f"{post['kl_total']:.2f} nats per sample{units}, below {MIN_KL_NATS:g}), so every "
                "input decodes to nearly the same output: posterior collapse; try free bits or a "
                "KL warm-up, a smaller β, or more epochs.",
                post,
            )
        )
    samples = figures.get("samples")
    if samples is not None and samples["collapsed"]:
        if out:
            advice = "it follows from the posterior collapse above, so fix that first"
        elif _adversarial(model):
            advice = (
                "train longer, raise the generator's learning rate or lower the discriminator's"
            )
        else:
            advice = "train longer or at a higher learning rate"
        alike = samples["diversity"] < MIN_DIVERSITY
        what = "are nearly identical" if alike else "repeat a few outputs"
        coverage = (
            f", and they resemble {samples['coverage']:.0%} as many distinct examples as real "
            "data does"
            if samples.get("coverage") is not None
            else ""
        )
        out.append(
            Diagnosis(
                "mode_collapse",
                f"The generated samples {what} (their spread is "
                f"{samples['diversity']:.0%} of the data's{coverage}): mode collapse; {advice}.",
                samples,
            )
        )
    return out


def collapse_figures(model: Any, data: Any, seed: int = 0) -> dict[str, dict[str, Any]]:
    """The figures behind :func:`diagnose`, also when nothing is wrong: ``posterior`` (KL per
    unit, active units, the mean KL) for a model with a posterior, ``samples`` (diversity and
    coverage against the data) for a model that samples; each with ``collapsed``."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            out = {}
            post = posterior_figures(model, data, seed)
            if post is not None:
                out["posterior"] = post
            if "sample" in getattr(model, "capabilities", ()):
                out["samples"] = sample_figures(model, data, seed)
            return out
    finally:
        model.train(was_training)


# -- posterior collapse ----------------------------------------------------------------------


def posterior_figures(model: Any, data: Any, seed: int = 0) -> dict[str, Any] | None:
    """KL of q(z|x) to N(0, I) per code unit on (up to 1024 of) ``data``; None for a model
    without a posterior it can read."""
    batch = _batch(model, data, MAX_POSTERIOR, seed)
    stats = None
    if batch is not None and callable(getattr(model, "posterior", None)):
        stats = model.posterior(batch)
    elif batch is not None and callable(getattr(model, "encode_stats", None)):
        if set(batch) == {"x"}:
            stats = model.encode_stats(batch["x"])
    if stats is not None:
        mean, logvar = (t.detach().double().flatten(1) for t in stats)
        per_unit = (0.5 * (mean.pow(2) + logvar.exp() - logvar - 1)).mean(0)
        kl_total = float(per_unit.sum())
        active = int((per_unit > ACTIVE_UNIT_NATS).sum())
        return {
            "kl_total": kl_total,
            "kl_per_unit": [float(v) for v in per_unit],
            "active_units": active,
            "units": int(per_unit.numel()),
            "min_kl_nats": MIN_KL_NATS,
            "collapsed": kl_total < MIN_KL_NATS or active == 0,
        }
    if batch is None or "encode" not in getattr(model, "capabilities", ()):
        return None
    try:  # an encoder whose validation reports its KL term: the mean only, no units
        terms = model.validation_step(batch)
    except Exception:  # noqa: BLE001 - a model that cannot validate this data has no figure
        return None
    kl = terms.get("kl") if isinstance(terms, dict) else None
    if kl is None:
        return None
    kl_total = float(kl.detach()) if isinstance(kl, torch.Tensor) else float(kl)
    return {"kl_total": kl_total, "min_kl_nats": MIN_KL_NATS, "collapsed": kl_total < MIN_KL_NATS}


# -- mode collapse ---------------------------------------------------------------------------


def sample_figures(model: Any, data: Any, seed: int = 0) -> dict[str, Any]:
    """How varied ``N_SAMPLES`` samples are next to as many real ones: ``diversity`` (mean
    pairwise distance, samples over data, in the data's principal subspace, so pixel noise does
    not pass for variety) and ``coverage`` (distinct nearest data examples, samples over real)."""
    x = _samples_of(data)
    rng = np.random.default_rng(seed)
    perm = rng.permutation(len(x))
    n_real = min(N_SAMPLES, max(len(x) // 2, 1))
    real = torch.as_tensor(x[perm[:n_real]]).double().flatten(1)
    reference = torch.as_tensor(x[perm[n_real : n_real + MAX_REFERENCE]]).double().flatten(1)
    device = _device(model)
    g = torch.Generator(device=device)
    g.manual_seed(int(seed))
    fake = model.sample(N_SAMPLES, generator=g).detach().double().cpu().flatten(1)
    figures: dict[str, Any] = {
        "n_samples": N_SAMPLES,
        "min_diversity": MIN_DIVERSITY,
        "min_coverage": MIN_COVERAGE,
    }
    if fake.shape[1] != real.shape[1]:
        raise ValueError(
            f"The model's samples have {fake.shape[1]} values but the data's have "
            f"{real.shape[1]}; diagnose a model with the data it was trained on."
        )
    centre = real.mean(0)
    _, sv, vt = torch.linalg.svd(real - centre, full_matrices=False)
    share = (sv**2).cumsum(0) / max(float((sv**2).sum()), 1e-300)
    k = int((share < VARIANCE_KEPT).sum()) + 1
    basis = vt[:k].T
    real_p, fake_p = (real - centre) @ basis, (fake - centre) @ basis
    spread = _mean_pairwise(real_p)
    if not spread > 0:  # constant data: no spread to compare with
        return {**figures, "diversity": None, "coverage": None, "collapsed": False}
    figures["components"] = k
    figures["diversity"] = _mean_pairwise(fake_p) / spread
    figures["coverage"] = None
    if len(reference) >= 2:
        ref_p = (reference - centre) @ basis
        distinct_fake = len(torch.cdist(fake_p, ref_p).argmin(1).unique())
        distinct_real = len(torch.cdist(real_p, ref_p).argmin(1).unique())
        figures["coverage"] = distinct_fake / max(distinct_real, 1)
    low_coverage = figures["coverage"] is not None and figures["coverage"] < MIN_COVERAGE
    figures["collapsed"] = figures["diversity"] < MIN_DIVERSITY or low_coverage
    return figures


def _mean_pairwise(a: torch.Tensor) -> float:
    n = len(a)
    return float(torch.cdist(a, a).sum()) / (n * (n - 1)) if n > 1 else 0.0


# -- plumbing --------------------------------------------------------------------------------


def _adversarial(model: Any) -> bool:
    """Whether the model trains a generator against a discriminator (by its declared steps)."""
    return {"generator", "discriminator"} <= set(getattr(model, "steps", ()))


def _device(model: Any) -> torch.device:
    for p in model.parameters():
        return p.device
    return torch.device("cpu")


def _samples_of(data: Any) -> np.ndarray:
    x = getattr(data, "x", data)
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=np.float32)


def _batch(model: Any, data: Any, limit: int, seed: int) -> dict[str, torch.Tensor] | None:
    """Up to ``limit`` samples of ``data`` as the batch dict the model takes; None when the data
    lacks a field the model needs (labels for a conditional model given bare samples)."""
    arrays = data.arrays() if callable(getattr(data, "arrays", None)) else {"x": _samples_of(data)}
    fields = tuple(getattr(model, "batch_fields", ("x",)))
    if any(f not in arrays for f in fields):
        return None
    n = len(arrays["x"])
    idx = np.sort(np.random.default_rng(seed).permutation(n)[: min(n, limit)])
    device = _device(model)
    return {
        f: torch.as_tensor(np.asarray(arrays[f])[idx], dtype=BATCH_DTYPES.get(f), device=device)
        for f in fields
    }
