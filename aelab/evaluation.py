"""Held-out evaluation and the batch plumbing shared by the trainer, ``aelab eval`` and the kit."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np
import torch

from .errors import ParamsError
from .models import BATCH_DTYPES, METRICS, Model


def _finite(values: dict[str, float]) -> bool:
    return all(math.isfinite(v) for v in values.values())


def _mean(rows: list[dict[str, float]]) -> dict[str, float]:
    if not rows:
        return {}
    return {k: float(np.mean([r[k] for r in rows if k in r])) for k in rows[0]}


def _split_terms(out: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """A step's output as (loss terms, metrics)."""
    metrics = out.get(METRICS) or {}
    return {k: v for k, v in out.items() if k != METRICS}, metrics


def _floats(values: dict[str, Any]) -> dict[str, float]:
    return {
        k: float(v.detach()) if isinstance(v, torch.Tensor) else float(v) for k, v in values.items()
    }


def check_fields(data: Any, fields: Iterable[str], what: str = "model") -> None:
    """Refuse data that lacks a batch field the model needs, with one sentence."""
    have = ["x", *(["y"] if getattr(data, "labels", None) is not None else []), *data.extra]
    for name in fields:
        if name in have:
            continue
        if name == "y":
            raise ParamsError(
                f"Model '{what}' is conditional and needs a label for every sample, but "
                f"dataset '{data.name}' has no labels; use labelled data (e.g. digits, or "
                "class sub-folders)."
            )
        raise ParamsError(
            f"Model '{what}' needs the batch field '{name}', which dataset '{data.name}' "
            f"does not provide (it has {', '.join(have)})."
        )


def batch_tensors(
    data: Any, fields: Iterable[str], device: torch.device, what: str = "model"
) -> dict[str, torch.Tensor]:
    """The per-sample arrays a model's batches need, as tensors on ``device``."""
    fields = tuple(fields)
    check_fields(data, fields, what)
    arrays = data.arrays()
    return {
        name: torch.as_tensor(np.asarray(arrays[name]), dtype=BATCH_DTYPES.get(name), device=device)
        for name in fields
    }


@torch.no_grad()
def evaluate_totals(
    model: Model, batches: Iterable[dict[str, torch.Tensor]]
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor], int]:
    """Loss terms and metrics summed over samples (weighted by batch size), in eval mode (no
    noise, no gradients), and the sample count; the sums stay on the device, unread."""
    was_training = model.training
    model.eval()
    sums: dict[str, torch.Tensor] = {}
    metric_sums: dict[str, torch.Tensor] = {}
    n = 0
    try:
        for batch in batches:
            size = len(batch["x"])
            terms, metrics = _split_terms(model.validation_step(batch))
            for out, values in ((sums, terms), (metric_sums, metrics)):
                for k, v in values.items():
                    v = torch.as_tensor(v).detach().float() * size
                    out[k] = out[k] + v if k in out else v
            n += size
    finally:
        model.train(was_training)
    return sums, metric_sums, n


def evaluate_batches(
    model: Model, tensors: dict[str, torch.Tensor], batch_size: int = 1024
) -> tuple[dict[str, float], dict[str, float]]:
    """Mean loss terms and metrics over ``tensors`` in eval mode (no noise, no gradients)."""
    n = len(tensors["x"])
    slices = (
        {k: v[i : i + batch_size] for k, v in tensors.items()} for i in range(0, n, batch_size)
    )
    sums, metric_sums, n = evaluate_totals(model, slices)
    if n == 0:
        return {}, {}
    return (
        {k: float(v) / n for k, v in sums.items()},
        {k: float(v) / n for k, v in metric_sums.items()},
    )


def evaluate(
    model: Model, x: torch.Tensor, batch_size: int = 1024, y: torch.Tensor | None = None
) -> dict[str, float]:
    """Mean loss terms over ``x`` in eval mode; ``y``: labels, for models that need them."""
    tensors = {"x": x} if y is None else {"x": x, "y": y}
    return evaluate_batches(model, tensors, batch_size)[0]
