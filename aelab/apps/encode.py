"""Dimensionality reduction: the codes of a dataset, written as .npy or CSV (``aelab encode``)."""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import Field

from ..applications import ApplicationError, ApplicationSpec, AppParams
from ..hookspecs import hookimpl
from .output import atomic_output

HELP = """\
**How it works.** The encoder maps every sample to its code: a few numbers in place of many
(64 pixels of a digit to, say, 8 values). Codes keep what the model needed to rebuild the input,
so they are compact features for another model (a classifier, a clustering, a nearest-neighbour
search) and, with 2 units, a map of the data. A VAE gives the mean of its code distribution.

**Against PCA.** PCA is the best *linear* code of a given size; an autoencoder with non-linear
layers earns its keep by reconstructing better at the same size (the Latent space tab compares
both). A linear autoencoder trained with squared error reaches PCA's error.

**Output.** One row per sample, one column per code unit, in the order of the data; `--labels`
adds the sample's label as a last column of a CSV.
"""


class EncodeParams(AppParams):
    """How many samples to encode at a time."""

    batch_size: int = Field(
        1024, ge=1, le=65536, title="Batch size", description="Samples encoded per forward pass."
    )


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
        raise ApplicationError("Pass --data: the run does not record where its data came from.")
    data = load_data(data_name, image_size=args.image_size)
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


def add_command(sub: argparse._SubParsersAction) -> None:
    """Add ``aelab encode``."""
    s = sub.add_parser("encode", help="write the codes of a dataset (dimensionality reduction)")
    s.add_argument("run", help="run id (or folder)")
    s.add_argument("--data", help="data to encode (default: the run's own data)")
    s.add_argument("--out", help="a .npy or .csv file")
    s.add_argument("--labels", action="store_true", help="CSV: add each sample's label column")
    s.add_argument("--batch-size", type=int, default=1024)
    s.add_argument("--image-size", type=int)
    s.add_argument("--force", action="store_true", help="replace an existing --out")
    s.add_argument("--json", action="store_true", help="print a JSON summary")
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
