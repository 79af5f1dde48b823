"""``aelab anomaly RUN``: score a dataset for anomalies, print the threshold and metrics, and
write one CSV row per sample."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from ..applications import ApplicationError
from .common import (
    add_force_json,
    add_image_size,
    aligned,
    check_run_data,
    no_source,
    out_path,
    print_summary,
)
from .output import atomic_output


def write_csv(result: Any, labels: Any, out: Path, force: bool = False) -> Path:
    """One row per sample (index, score, flagged, and label when the data has labels), written
    to a temporary file beside ``out`` and renamed into place; an existing file is replaced only
    with ``force``."""
    out = Path(out)
    if out.is_dir():
        raise ApplicationError(f"{out} is a folder; name a .csv file to write the scores to.")
    header = "index,score,flagged" + (",label" if labels is not None else "")
    rows = [header]
    for i, (score, flag) in enumerate(zip(result.scores.tolist(), result.flagged.tolist())):
        row = f"{i},{score:.10g},{int(flag)}"
        rows.append(row if labels is None else f"{row},{int(labels[i])}")
    with atomic_output(out, force) as tmp:
        with open(tmp, "w", encoding="utf-8", newline="") as fh:
            fh.write("\n".join(rows) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
    return out


def _how(summary: dict[str, Any]) -> str:
    """How the threshold was chosen, in words."""
    c = summary["contamination"]
    if summary["threshold_method"] == "contamination":
        return f"contamination {c:g}: the highest {c:.0%} of these scores"
    if summary["threshold_method"] == "normal":
        return f"the {1 - c:.0%} quantile of the scores on the run's normal held-out data"
    return "the best F1 against the labels"


def _text(summary: dict[str, Any]) -> str:
    """The summary as aligned ``name value`` lines."""
    rows = [
        ("run", summary["run"]),
        ("data", f"{summary['data']} ({summary['n']} samples)"),
        ("score", summary["score"]),
        ("threshold", f"{summary['threshold']:.6g} ({_how(summary)}); flagged at or above it"),
        ("flagged", f"{summary['n_flagged']} of {summary['n']}"),
    ]
    if summary["normal_labels"] is not None:
        rows.append(
            (
                "normal classes",
                f"{', '.join(map(str, summary['normal_labels']))} "
                f"({summary['n_anomalous']} anomalies by the labels)",
            )
        )
    for key in ("auroc", "average_precision", "precision", "recall", "f1"):
        if summary.get(key) is not None:
            rows.append((key, f"{summary[key]:.4f}"))
    if summary.get("note"):
        rows.append(("note", summary["note"]))
    if summary.get("out"):
        rows.append(("written to", summary["out"]))
    return aligned(rows)


def cmd_anomaly(args: argparse.Namespace) -> int:
    """``aelab anomaly RUN --data FILE [--normal-labels 3] [--json] [--out scores.csv]``."""
    from ..data import label_values, load_data
    from ..runs import load_run
    from .anomaly import SPEC, default_normal_labels, detect, normal_data

    out = out_path(args)
    run = load_run(args.run)
    SPEC.require(run.model)
    data_name = args.data or run.data_meta.get("source", "").removeprefix("builtin:")
    if not data_name:
        raise no_source()
    data = load_data(data_name, image_size=args.image_size)
    check_run_data(data, run)
    if args.normal_labels:
        normal_labels = label_values(data, args.normal_labels, "the normal classes")
    else:  # the classes the run was trained on, when the data can say which samples they are
        normal_labels = default_normal_labels(run.data_meta) if data.labels is not None else None
    values: dict[str, Any] = {"normal_labels": normal_labels}
    for key in ("score", "threshold", "contamination"):
        if getattr(args, key) is not None:
            values[key] = getattr(args, key)
    params = SPEC.validate_params(values)
    normal = normal_data(run) if params.threshold == "normal" else None
    result = detect(run.model, data, params, normal=normal)
    if out is not None:
        write_csv(result, data.labels, out, args.force)
    summary = {"run": run.run_id, "data": data.name, **result.to_json(), "out": args.out}
    print_summary(summary, args.json, lambda: _text(summary))
    return 0


def add_command(sub: argparse._SubParsersAction) -> None:
    """Add ``aelab anomaly``."""
    s = sub.add_parser(
        "anomaly",
        help="score a dataset for anomalies (reconstruction error, ELBO or critic)",
        description="Score every sample of a dataset with a trained model, flag those at or "
        "above a threshold and, when labels say which classes are normal, report AUROC and "
        "average precision.",
    )
    s.add_argument("run", help="run id (or folder)")
    s.add_argument("--data", help="data to score (default: the run's own data source)")
    s.add_argument(
        "--normal-labels",
        dest="normal_labels",
        nargs="+",
        metavar="LABEL",
        help="classes that count as normal, the rest being anomalies (default: the classes the "
        "run kept with `aelab train --keep-labels`)",
    )
    s.add_argument(
        "--contamination",
        type=float,
        help="expected share of anomalies, 0 to 0.5 (default 0.05)",
    )
    s.add_argument(
        "--threshold",
        choices=["contamination", "normal", "best_f1"],
        help="contamination: flag that share of the data (default); normal: a quantile of the "
        "scores on the run's validation split; best_f1: the best F1 against the labels",
    )
    s.add_argument(
        "--score",
        choices=["auto", "reconstruction", "elbo", "critic"],
        help="auto (default): reconstruction error, or a GAN's critic",
    )
    add_image_size(s)
    s.add_argument("--out", help="write one CSV row per sample: index, score, flagged, label")
    add_force_json(s)
    s.set_defaults(func=cmd_anomaly)
