"""Several runs side by side: what ``aelab compare`` prints and the lab's Runs tab shows.

    from aelab.compare import compare_rows
    rows = compare_rows(["vae-...", "autoencoder-..."])   # each on its own validation split

Each row is :meth:`aelab.api.Trained.evaluate`'s result (run, model, data, source, split, n,
losses, the model's own metrics, figures) with the run's hyperparameters, its epochs and the
last epoch's training samples/s. :data:`FIGURE_NAMES` names the figures and
:func:`figures_text` says how each was computed; the CLI and the lab both use them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

# The literature's figures of aelab.assessment, in the order tables show them, with their units.
FIGURE_NAMES = {
    "mse": "MSE per element",
    "psnr": "PSNR dB",
    "ssim": "SSIM",
    "bce": "BCE per sample (nats)",
    "elbo": "ELBO (nats)",
    "nll": "NLL bound (nats)",
    "fd": "Fréchet distance",
}


def figure_notes(figures: dict[str, Any]) -> list[str]:
    """How the figures of an evaluation were computed, one sentence a line (no values)."""
    lines = []
    if "reconstructed_from" in figures:
        lines.append(f"Reconstructions decoded from {figures['reconstructed_from']}.")
    if "nll" in figures:
        lines.append(f"NLL: the importance-weighted bound with {figures['nll_samples']} samples.")
    if "nll_note" in figures:
        lines.append(figures["nll_note"])
    if "fd" in figures:
        lines.append(
            f"Fréchet distance: {figures['fd_samples']} generated and {figures['fd_samples']} "
            f"real samples, in {figures['fd_features']}."
        )
    return lines


def figures_text(figures: dict[str, Any]) -> list[str]:
    """The figures of an evaluation as lines of text: their values, then how each was computed."""
    lines = []
    shown = {k: figures[k] for k in FIGURE_NAMES if k in figures}
    if shown:
        lines.append("  ".join(f"{FIGURE_NAMES[k]} {v:.5g}" for k, v in shown.items()))
    return lines + figure_notes(figures)


def figure_keys(rows: list[dict[str, Any]]) -> list[str]:
    """The figures (keys of FIGURE_NAMES) that at least one row has, in table order."""
    return [k for k in FIGURE_NAMES if any(k in r["figures"] for r in rows)]


def compare_row(trained: Any, result: dict[str, Any]) -> dict[str, Any]:
    """One row of a comparison: an evaluation ``result`` of ``trained`` with the run's
    hyperparameters, its epochs and the last epoch's training samples/s."""
    last = trained.history[-1] if trained.history else {}
    return {
        **result,
        "params": trained.params.model_dump(mode="json"),
        "epochs": last.get("epoch", 0),
        "samples_per_s": last.get("samples_per_s"),
    }


def compare_rows(
    runs: Iterable[Any],
    data: Any = None,
    split: str | None = None,
    *,
    nll_samples: int = 0,
    fd_samples: int = 1000,
    image_size: int | None = None,
) -> list[dict[str, Any]]:
    """Evaluate each run (an id, a run folder or an :class:`aelab.api.Trained`) the same way and
    return one row each (see :func:`compare_row`): on ``data`` scored whole when given (a name,
    a path, an array or a Dataset), else on each run's own data, its validation split by
    default (``split="all"``: all of it); ``nll_samples`` and ``fd_samples`` as for
    :meth:`aelab.api.Trained.evaluate`."""
    from .api import Trained, load

    rows = []
    for run in runs:
        trained = run if isinstance(run, Trained) else load(run)
        result = trained.evaluate(
            data,
            split if data is None else None,
            nll_samples=nll_samples,
            fd_samples=fd_samples,
            image_size=image_size,
        )
        rows.append(compare_row(trained, result))
    return rows
