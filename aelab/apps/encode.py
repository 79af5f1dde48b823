"""Dimensionality reduction: the codes of a dataset, written as .npy or CSV (``aelab encode``),
and a sweep of held-out reconstruction error over code sizes against PCA (``--sweep``)."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import Field

from ..applications import ApplicationError, ApplicationSpec, AppParams
from ..hookspecs import hookimpl
from ..params import validate
from .common import add_force_json, no_source
from .output import atomic_output, check_out

HELP = """\
**How it works.** The encoder maps every sample to its code: a few numbers in place of many
(64 pixels of a digit to, say, 8 values). Codes keep what the model needed to rebuild the input,
so they are compact features for another model (a classifier, a clustering, a nearest-neighbour
search) and, with 2 units, a map of the data. A VAE gives the mean of its code distribution.

**Against PCA.** PCA is the best *linear* code of a given size; an autoencoder with non-linear
layers earns its keep by reconstructing better at the same size (the Latent space tab compares
both). A linear autoencoder trained with squared error reaches PCA's error.

**The sweep** retrains the same model, with the same settings, at each code size you list, and
measures each one's reconstruction error (MSE per value) on the held-out part of the data, next to
PCA with as many components, fitted on the training part. Where the model's curve lies below
PCA's, its non-linear code keeps more at that size; where both flatten, a larger code buys little.

**Output.** One row per sample, one column per code unit, in the order of the data; `--labels`
adds the sample's label as a last column of a CSV.
"""


class EncodeParams(AppParams):
    """How many samples to encode at a time."""

    batch_size: int = Field(
        1024, ge=1, le=65536, title="Batch size", description="Samples encoded per forward pass."
    )


MAX_SWEEP = 12


class SweepParams(AppParams):
    """Which code sizes to train, for how long."""

    sizes: list[int] = Field(
        [2, 4, 8, 16, 32],
        min_length=1,
        max_length=MAX_SWEEP,
        title="Code sizes",
        description="Code sizes to train the model at, each compared with PCA of that many "
        "components.",
    )
    epochs: int | None = Field(
        None,
        ge=1,
        le=1000,
        title="Epochs",
        description="Epochs for each model (default: the run's own).",
    )


@dataclass
class Sweep:
    """Held-out reconstruction error per code size, for the model and for PCA."""

    model: str
    data: str
    rows: list[dict[str, Any]]  # code_size, model_mse, pca_mse, pca_explained, status
    n_val: int
    epochs: int

    def to_json(self) -> dict[str, Any]:
        """The table and what it was measured on."""
        return {
            "model": self.model,
            "data": self.data,
            "n_val": self.n_val,
            "epochs": self.epochs,
            "rows": self.rows,
        }


@dataclass
class Codes:
    """The codes of a dataset, one row per sample."""

    codes: np.ndarray  # (N, code units) float32
    labels: np.ndarray | None

    def to_json(self) -> dict[str, Any]:
        """Shape and per-unit statistics, without the array."""
        return {
            "n": int(self.codes.shape[0]),
            "units": int(self.codes.shape[1]),
            "mean": [round(float(v), 6) for v in self.codes.mean(axis=0)],
            "std": [round(float(v), 6) for v in self.codes.std(axis=0)],
        }


def encode(model: Any, data: Any, params: EncodeParams) -> Codes:
    """Codes of every sample of ``data`` (flattened to one row each)."""
    from .. import inspect as ins

    SPEC.require(model)
    if tuple(data.sample_shape) != tuple(model.sample_shape):
        raise ApplicationError(
            f"The data has samples of shape {list(data.sample_shape)}, but the model was trained "
            f"on {list(model.sample_shape)}."
        )
    codes = ins.encode(model, data.x, batch_size=params.batch_size).astype(np.float32)
    return Codes(codes, data.labels)


def sweep(
    spec: Any,
    params: Any,
    config: Any,
    data: Any,
    sweep_params: SweepParams,
    progress: Any = None,
) -> Sweep:
    """Train ``spec`` at each code size (other settings as given) and measure the held-out MSE
    of it and of PCA with as many components; ``progress(done, total, text)`` is told along."""
    from .. import inspect as ins
    from ..errors import AelabError
    from ..models import build_seeded
    from ..train import Trainer

    base = params.model_dump() if hasattr(params, "model_dump") else dict(params)
    if "code_size" not in base:
        raise ApplicationError(
            f"{spec.name} has no code_size setting, so there is nothing to sweep."
        )
    cfg = config.model_copy(update={"epochs": sweep_params.epochs or config.epochs})
    if not 0 < cfg.val_fraction < 1:
        raise ApplicationError(
            "A sweep measures error on held-out data; train with a validation fraction above 0."
        )
    train_part, val_part = data.split(cfg.val_fraction, cfg.seed)
    sizes = sorted(set(sweep_params.sizes))
    checked = []
    for size in sizes:  # refuse a bad size before any training starts
        try:
            checked.append(spec.validate_params({**base, "code_size": size}))
            build_seeded(spec, checked[-1], tuple(data.sample_shape), data.kind, cfg.seed)
        except AelabError as exc:
            raise ApplicationError(f"Code size {size} cannot be swept: {exc}") from None
    rows = []
    for i, p in enumerate(checked):
        if progress is not None:
            progress(i, len(checked), f"training at code size {p.code_size}")
        done = Trainer(spec, p, data, cfg, save=False).fit()
        row: dict[str, Any] = {"code_size": p.code_size, "status": done.status}
        recon = ins.reconstruct(done.model, val_part.x) if done.status != "diverged" else None
        row["model_mse"] = None if recon is None else round(ins.mse(recon, val_part.x), 6)
        pca = ins.pca_baseline(train_part.x, val_part.x, p.code_size)
        row["pca_mse"] = round(pca.mse, 6)
        row["pca_explained"] = round(pca.explained, 4)
        rows.append(row)
    if progress is not None:
        progress(len(checked), len(checked), "done")
    return Sweep(spec.id, data.name, rows, len(val_part), cfg.epochs)


def write(result: Codes, out: Path, labels: bool = False, force: bool = False) -> Path:
    """Write codes to .npy or .csv through a temporary file, renamed into place."""
    out = Path(out)
    if out.suffix.lower() not in (".npy", ".csv"):
        raise ApplicationError(f"Write codes to a .npy or .csv file, not {out.name}.")
    with atomic_output(out, force) as tmp:
        if out.suffix.lower() == ".npy":
            np.save(tmp, result.codes)
        else:
            table = result.codes
            header = ",".join(f"z{i}" for i in range(table.shape[1]))
            if labels and result.labels is not None:
                table = np.column_stack([table, result.labels])
                header += ",label"
            np.savetxt(tmp, table, delimiter=",", fmt="%.7g", header=header, comments="")
    return out


def cmd_encode(args: argparse.Namespace) -> int:
    """``aelab encode RUN --data FILE --out codes.npy``."""
    from ..data import load_data
    from ..runs import load_run

    run = load_run(args.run)
    data_name = args.data or run.data_meta.get("source", "").removeprefix("builtin:")
    if not data_name:
        raise no_source()
    data = load_data(data_name, image_size=args.image_size)
    if args.sweep:
        return _cmd_sweep(args, run, data)
    result = encode(run.model, data, SPEC.validate_params({"batch_size": args.batch_size}))
    if args.out:
        write(result, Path(args.out), labels=args.labels, force=args.force)
    summary = {**result.to_json(), "run": run.run_id, "data": data.name, "out": args.out}
    if args.json:
        print(json.dumps(summary))
    else:
        where = f", written to {args.out}" if args.out else ""
        print(f"{summary['n']} samples of {data.name} → {summary['units']} code units{where}.")
    return 0


def _sizes(text: str) -> list[int]:
    try:
        return [int(part) for part in text.replace(" ", "").split(",") if part]
    except ValueError:
        raise ApplicationError(
            f"--sweep takes code sizes as whole numbers separated by commas (like 2,4,8), not "
            f"{text!r}."
        ) from None


def _cmd_sweep(args: argparse.Namespace, run: Any, data: Any) -> int:
    """``aelab encode RUN --sweep 2,4,8`` (``--out`` a CSV table)."""
    params = validate(SweepParams, {"sizes": _sizes(args.sweep), "epochs": args.epochs}, "--sweep")
    if args.out and Path(args.out).suffix.lower() != ".csv":
        raise ApplicationError(f"Write a sweep to a .csv file, not {Path(args.out).name}.")
    if args.out:
        check_out(Path(args.out), args.force)

    def tell(done: int, total: int, text: str) -> None:
        if not args.json and done < total:
            print(f"[{done + 1}/{total}] {text}", file=sys.stderr, flush=True)

    result = sweep(run.spec, run.params, run.config, data, params, tell)
    if args.out:
        with atomic_output(Path(args.out), args.force) as tmp:
            lines = ["code_size,model_mse,pca_mse,pca_explained,status"]
            lines += [
                f"{r['code_size']},{'' if r['model_mse'] is None else r['model_mse']},"
                f"{r['pca_mse']},{r['pca_explained']},{r['status']}"
                for r in result.rows
            ]
            tmp.write_text("\n".join(lines) + "\n")
    if args.json:
        print(json.dumps({**result.to_json(), "run": run.run_id, "out": args.out}))
        return 0
    print(
        f"Held-out reconstruction MSE of {result.model} on {result.data} ({result.n_val} "
        f"samples, {result.epochs} epochs each) against PCA with as many components:"
    )
    print(f"{'code':>6}  {'model':>10}  {'PCA':>10}  better")
    for r in result.rows:
        m = r["model_mse"]
        better = "—" if m is None else ("model" if m < r["pca_mse"] else "PCA")
        shown = "diverged" if m is None else f"{m:.6f}"
        print(f"{r['code_size']:>6}  {shown:>10}  {r['pca_mse']:>10.6f}  {better}")
    return 0


def add_command(sub: argparse._SubParsersAction) -> None:
    """Add ``aelab encode``."""
    s = sub.add_parser("encode", help="write the codes of a dataset (dimensionality reduction)")
    s.add_argument("run", help="run id (or folder)")
    s.add_argument("--data", help="data to encode (default: the run's own data)")
    s.add_argument("--out", help="a .npy or .csv file (with --sweep: a .csv table)")
    s.add_argument(
        "--sweep",
        metavar="SIZES",
        help="retrain at these code sizes (like 2,4,8,16) and compare held-out error with PCA",
    )
    s.add_argument("--epochs", type=int, help="with --sweep: epochs per model (default: the run's)")
    s.add_argument("--labels", action="store_true", help="CSV: add each sample's label column")
    s.add_argument("--batch-size", type=int, default=1024)
    s.add_argument("--image-size", type=int)
    add_force_json(s)
    s.set_defaults(func=cmd_encode)


SPEC = ApplicationSpec(
    id="encode",
    name="Dimensionality reduction",
    description="Writes the code of every sample of a dataset, a compact set of features for "
    "other tools, as .npy or CSV.",
    params=EncodeParams,
    run=encode,
    needs=frozenset({"encode"}),
    cli=add_command,
    panel="aelab.ui.panels.encode:build",
    help=HELP,
)


@hookimpl
def register_applications(register):
    """Register dimensionality reduction."""
    register(SPEC)
