"""Pieces the application commands share: checking and reading samples, picking the data a
command scores, printing its summary, and the flags every command takes."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

from ..applications import ApplicationError


# -- samples --------------------------------------------------------------------------------
def check_batch(model: Any, x: Any, what: str, nan_ok: bool = False) -> np.ndarray:
    """``x`` as a float32 batch of the model's sample shape (one sample may lack the batch
    axis). NaN or infinite values are refused; with ``nan_ok`` only infinite ones are (NaN marks
    missing values)."""
    x = np.asarray(x, dtype=np.float32)
    want = tuple(model.sample_shape)
    if x.shape == want:  # one sample without the batch axis
        x = x[None]
    if x.ndim != len(want) + 1 or tuple(x.shape[1:]) != want or len(x) == 0:
        raise ApplicationError(
            f"{what} has shape {list(x.shape)}, but the model takes samples of shape "
            f"{list(want)} (one sample, or a batch of them)."
        )
    if nan_ok:
        if np.isinf(x).any():
            raise ApplicationError(f"{what} holds infinite values; mark missing values with NaN.")
    elif not np.isfinite(x).all():
        raise ApplicationError(f"{what} holds NaN or infinite values.")
    return x


def reconstruct(model: Any, x: np.ndarray, batch_size: int) -> np.ndarray:
    """The model's reconstructions of ``x``, ``batch_size`` samples at a time, clipped to
    [0, 1]."""
    from .. import inspect as ins

    out = [ins.reconstruct(model, x[i : i + batch_size]) for i in range(0, len(x), batch_size)]
    return np.clip(np.concatenate(out), 0.0, 1.0).astype(np.float32)


# -- input files ----------------------------------------------------------------------------
def load_npy(path: Path) -> np.ndarray:
    """A plain (unpickled) .npy array."""
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise ApplicationError(f"{path} is not a plain .npy array ({exc}).") from None


def image_shape(model: Any, instead: str) -> tuple[int, ...]:
    """The model's (C, H, W) sample shape; a model of flat vectors is refused, ``instead``
    saying what to pass (e.g. "pass a .npy file.")."""
    shape = tuple(model.sample_shape)
    if len(shape) != 3:
        raise ApplicationError(
            f"This model works on flat vectors of shape {list(shape)}, not images; {instead}"
        )
    return shape


def read_npy_or_image(
    path: Path,
    model: Any,
    scaling: dict | None,
    *,
    what: str = "input",
    instead: str = "pass a .npy file.",
    wrong_kind: str = "",
) -> np.ndarray:
    """Samples from a .npy (scaled like the data) or, for an image model, a PNG or JPEG (mapped
    to [0, 1] like ``aelab infer`` does). ``what`` names the file in "No {what} file at ...",
    ``instead`` is what to pass to a model of flat vectors, and ``wrong_kind`` the message for a
    file of another kind."""
    from ..cli_export import IMAGE_SUFFIXES, read_image

    if not path.is_file():
        raise ApplicationError(f"No {what} file at {path}.")
    suffix = path.suffix.lower()
    if suffix == ".npy":
        return load_npy(path)
    if suffix in IMAGE_SUFFIXES:
        shape = image_shape(model, instead)
        return read_image(path, shape, {"scaling": scaling or {}})
    raise ApplicationError(wrong_kind)


# -- the data a command scores --------------------------------------------------------------
def no_source() -> ApplicationError:
    """The error for a run that does not say where its data came from."""
    return ApplicationError("Pass --data: the run does not record where its data came from.")


def check_run_data(data: Any, run: Any) -> None:
    """Refuse data whose samples are not of the shape the run was trained on."""
    if tuple(data.sample_shape) != tuple(run.model.sample_shape):
        raise ApplicationError(
            f"The data {data.name} has samples of shape {list(data.sample_shape)}, but run "
            f"'{run.run_id}' was trained on {list(run.model.sample_shape)}."
        )


def clean_samples(args: argparse.Namespace, run: Any) -> tuple[np.ndarray, str]:
    """Up to ``args.n`` complete samples and the data's name: the run's held-out split (its
    whole data when it held nothing out), or a pick of ``--data`` seeded by ``args.seed``."""
    from ..data import load_data, load_run_data

    if args.data:
        data = load_data(args.data, image_size=args.image_size)
        name = data.name
    else:
        if not run.data_meta.get("source"):
            raise no_source()
        train, val = load_run_data(run.data_meta, run.config.val_fraction, run.config.seed)
        data = val if val is not None else train
        name = f"{data.name} (held-out part)" if val is not None else data.name
    check_run_data(data, run)
    x = data.x
    if len(x) > args.n:
        pick = np.random.default_rng(args.seed).choice(len(x), args.n, replace=False)
        x = x[np.sort(pick)]
    return x, name


# -- the command ----------------------------------------------------------------------------
def out_path(args: argparse.Namespace) -> Path | None:
    """``--out`` as a path, refused before any work when it exists (unless ``--force``)."""
    from .output import check_out

    out = Path(args.out) if args.out else None
    if out is not None:
        check_out(out, args.force)
    return out


def check_command(args: argparse.Namespace, both: str) -> Path | None:
    """The checks before a command that takes INPUT or ``--data`` loads anything: not both
    (``both`` says so), ``-n`` at least 1, and ``--out`` (see :func:`out_path`)."""
    if args.input and args.data:
        raise ApplicationError(both)
    if args.n < 1:
        raise ApplicationError("-n must be at least 1.")
    return out_path(args)


def aligned(rows: Iterable[tuple[str, Any]]) -> str:
    """``(name, value)`` rows as aligned ``name  value`` lines."""
    rows = list(rows)
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)


def print_summary(summary: dict[str, Any], as_json: bool, text: Callable[[], str]) -> None:
    """Print the summary as one JSON object, or ``text()`` for people."""
    print(json.dumps(summary) if as_json else text())


def add_image_size(s: argparse.ArgumentParser) -> None:
    """``--image-size``, for data read from a folder of images."""
    s.add_argument("--image-size", type=int, help="resize images from a folder to this size")


def add_force_json(s: argparse.ArgumentParser, json_help: str = "print a JSON summary") -> None:
    """``--force`` (replace an existing --out) and ``--json``."""
    s.add_argument("--force", action="store_true", help="replace an existing --out")
    s.add_argument("--json", action="store_true", help=json_help)
