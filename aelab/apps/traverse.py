"""Latent traversal: decode codes that move along chosen code units, one row per unit, or a 2-D
grid over two units (``aelab traverse``)."""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field

from ..applications import ApplicationError, ApplicationSpec, AppParams
from ..hookspecs import hookimpl
from .common import add_force_json
from .output import atomic_output

HELP = """\
**How it works.** Start from a central code and move one code unit at a time from −span to +span,
keeping the others fixed; decode every step. Each row shows what one unit controls: stroke
thickness, slant, which digit. With **grid** layout two units move at once, and the picture is a
map of what the decoder makes across that plane (the classic picture of a 2-D VAE).

**Where the steps come from.** A model with a prior (VAE, adversarial AE, GAN) is traversed around
the prior's centre 0 in steps of its standard deviation, so ±2 covers about 95 % of the codes it
was trained to decode. A model without a prior (a plain autoencoder) has no such scale: the data is
encoded first, and each unit moves around the mean of its codes in steps of their standard
deviation; by default the units with the largest spread are shown first. A conditional model is
traversed within the class you choose.

**Reading it.** A row that does not change is a unit the model does not use (for a VAE, a unit
whose KL term collapsed). Steps far outside the data (a large span) show what the decoder does
where it never saw a code: often blurry or implausible.
"""

MAX_AXES = 16


class TraverseParams(AppParams):
    """Which code units, how many steps, how far."""

    axes: list[int] | None = Field(
        None,
        max_length=MAX_AXES,
        title="Code units",
        description="Units to traverse, counted from 0 (default: up to 8 units; the two units "
        "of a 2-D code as a grid).",
    )
    steps: int = Field(9, ge=2, le=21, title="Steps", description="Decoded codes per unit.")
    span: float = Field(
        2.5,
        gt=0.0,
        le=6.0,
        title="Span (standard deviations)",
        description="How far each unit moves either side of the centre, in standard deviations "
        "of the prior (or of the data's codes for a model without a prior).",
    )
    layout: Literal["auto", "rows", "grid"] = Field(
        "auto",
        title="Layout",
        description="rows: one row per unit; grid: two units at once over a plane; auto: grid "
        "for a 2-D code, rows otherwise.",
    )
    label: int | None = Field(
        None,
        ge=0,
        le=999,
        title="Class",
        description="For a conditional model: the class to traverse within (default 0).",
    )


@dataclass
class Traversal:
    """Decoded codes: ``decoded[r, s]`` is row r at step s (for a grid, row r is a step of the
    second unit)."""

    decoded: np.ndarray  # (rows, steps, *sample_shape), values in [0, 1]
    axes: list[int]
    values: np.ndarray  # (steps,) offsets from the centre, in standard deviations
    layout: str  # "rows" or "grid"
    scale: str  # "prior" or "data"
    label: int | None

    @property
    def row_labels(self) -> list[str]:
        """A plain-ASCII label per row of the picture."""
        if self.layout == "grid":
            return [f"z{self.axes[1]} {v:+.1f}" for v in self.values]
        return [f"z{a}" for a in self.axes]

    def to_json(self) -> dict[str, Any]:
        """A summary without the decoded arrays."""
        return {
            "axes": self.axes,
            "steps": int(len(self.values)),
            "values": [round(float(v), 4) for v in self.values],
            "layout": self.layout,
            "scale": self.scale,
            "label": self.label,
            "shape": list(self.decoded.shape),
        }

    def picture(self, cell: int = 40) -> np.ndarray:
        """The traversal as one labelled image (images as tiles, flat samples as strips)."""
        from ..inspect import image_grid

        if self.decoded.ndim == 3:  # flat samples: a panel per row, a line per step
            from ..charts import compare

            steps = [self.decoded[:, s] for s in range(self.decoded.shape[1])]
            offsets = [f"{v:+.1f}" for v in self.values]
            return compare(steps, offsets, titles=self.row_labels, max_panels=len(self.decoded))
        return image_grid(list(self.decoded), self.row_labels, cell=cell)


def _free_units(model: Any) -> int:
    """Code units that can move (a conditional model's code ends with a one-hot class)."""
    if getattr(model, "needs_labels", False) and hasattr(model, "one_hot"):
        return int(model.params.code_size)
    return int(np.prod(model.code_shape))


def serves(model: Any) -> str | None:
    """A traversal needs a code of one axis and either a prior or an encoder to scale it by."""
    caps = set(model.capabilities)
    if "sample" not in caps and "encode" not in caps:
        return (
            "A traversal needs a model with a prior (to know how far to move) or an encoder (to "
            "measure the codes of the data); this one has neither."
        )
    if len(tuple(model.code_shape)) != 1:
        return (
            f"A traversal moves along units of a flat code; this code has shape {model.code_shape}."
        )
    return None


def traverse(model: Any, params: TraverseParams, data: Any = None) -> Traversal:
    """Decode the traversal ``params`` asks for; ``data`` scales a model without a prior."""
    import torch

    from .. import inspect as ins

    SPEC.require(model)
    units = _free_units(model)
    conditional = getattr(model, "needs_labels", False) and hasattr(model, "one_hot")
    if params.label is not None and not conditional:
        raise ApplicationError(
            "This model is not conditional, so there is no class to choose; leave the class empty."
        )
    centre, scale = np.zeros(units, np.float32), np.ones(units, np.float32)
    kind = "prior"
    order = list(range(units))
    if "sample" not in model.capabilities:  # no prior: the data's codes give centre and scale
        if data is None:
            raise ApplicationError(
                "This model has no prior, so the traversal is scaled by the codes of data; "
                "pass the data (--data FILE)."
            )
        if tuple(data.sample_shape) != tuple(model.sample_shape):
            raise ApplicationError(
                f"The data has samples of shape {list(data.sample_shape)}, but the model was "
                f"trained on {list(model.sample_shape)}."
            )
        codes = ins.encode(model, data.x).astype(np.float32)
        centre, scale = codes.mean(axis=0), codes.std(axis=0) + 1e-8
        kind = "data"
        order = [int(i) for i in np.argsort(-scale, kind="stable")]
    layout = params.layout
    if layout == "auto":
        layout = "grid" if units == 2 and params.axes is None else "rows"
    axes = list(params.axes) if params.axes is not None else order[: 2 if layout == "grid" else 8]
    bad = [a for a in axes if not 0 <= a < units]
    if bad:
        raise ApplicationError(
            f"Code unit {bad[0]} does not exist: this code has units 0 to {units - 1}."
        )
    if len(set(axes)) != len(axes) or not axes:
        raise ApplicationError("Name each code unit once, and at least one.")
    if layout == "grid" and len(axes) != 2:
        raise ApplicationError(
            f"A grid moves exactly two code units at once; {len(axes)} were given."
        )
    values = np.linspace(-params.span, params.span, params.steps, dtype=np.float32)
    n = len(values)
    if layout == "grid":
        a, b = axes
        z = np.repeat(centre[None], n * n, axis=0).reshape(n, n, units)
        z[:, :, a] += values[None, :] * scale[a]
        z[:, :, b] += values[::-1, None] * scale[b]  # up is positive, as on a plot
        z = z.reshape(n * n, units)
    else:
        z = np.repeat(centre[None], len(axes) * n, axis=0).reshape(len(axes), n, units)
        for r, a in enumerate(axes):
            z[r, :, a] += values * scale[a]
        z = z.reshape(len(axes) * n, units)
    if layout == "grid":
        values = values[::-1].copy()  # row labels, top to bottom
    label = None
    model.eval()
    device = next(iter(model.parameters()), torch.empty(0)).device
    with torch.no_grad():
        zt = torch.as_tensor(z, device=device)
        if conditional:
            label = params.label or 0
            n_classes = int(model.params.n_classes)
            if label >= n_classes:
                raise ApplicationError(
                    f"Class {label} does not exist: this model knows classes 0 to {n_classes - 1}."
                )
            y = torch.full((len(zt),), label, dtype=torch.long, device=device)
            zt = torch.cat([zt, model.one_hot(y)], dim=1)
        out = model.decode(zt).float().cpu().numpy().clip(0, 1)
    rows = n if layout == "grid" else len(axes)
    decoded = out.reshape(rows, n, *out.shape[1:])
    return Traversal(decoded, axes, values, layout, kind, label)


def write(result: Traversal, out: Path, force: bool = False) -> Path:
    """The picture as a PNG, or the decoded codes as .npy (rows, steps, *shape)."""
    out = Path(out)
    suffix = out.suffix.lower()
    if suffix not in (".png", ".npy"):
        raise ApplicationError(
            f"Write a traversal to a .png picture or a .npy array, not {out.name}."
        )
    with atomic_output(out, force) as tmp:
        if suffix == ".png":
            from PIL import Image

            Image.fromarray(result.picture()).save(tmp, format="PNG")
        else:
            np.save(tmp, result.decoded)
    return out


def _axes(text: str | None) -> list[int] | None:
    if not text:
        return None
    try:
        return [int(part) for part in text.replace(" ", "").split(",") if part]
    except ValueError:
        raise ApplicationError(
            f"--axes takes code units as whole numbers separated by commas (like 0,3), not "
            f"{text!r}."
        ) from None


def cmd_traverse(args: argparse.Namespace) -> int:
    """``aelab traverse RUN [--axes 0,1] [--out grid.png]``."""
    from ..data import load_data
    from ..runs import load_run

    run = load_run(args.run)
    params = SPEC.validate_params(
        {
            "axes": _axes(args.axes),
            "steps": args.steps,
            "span": args.span,
            "layout": args.layout,
            "label": args.label,
        }
    )
    data = None
    if "sample" not in run.model.capabilities:
        name = args.data or run.data_meta.get("source", "").removeprefix("builtin:")
        if name:
            data = load_data(name, image_size=args.image_size)
    result = traverse(run.model, params, data)
    if args.out:
        write(result, Path(args.out), args.force)
    summary = {**result.to_json(), "run": run.run_id, "out": args.out}
    if args.json:
        print(json.dumps(summary))
    else:
        what = (
            f"a {len(result.values)}×{len(result.values)} grid over units {result.axes}"
            if result.layout == "grid"
            else f"{len(result.axes)} unit(s) {result.axes} in {len(result.values)} steps"
        )
        where = f", written to {args.out}" if args.out else ""
        print(f"Traversed {what}, ±{params.span} standard deviations ({result.scale}){where}.")
    return 0


def add_command(sub: argparse._SubParsersAction) -> None:
    """Add ``aelab traverse``."""
    s = sub.add_parser("traverse", help="decode codes moving along chosen units (latent traversal)")
    s.add_argument("run", help="run id (or folder)")
    s.add_argument("--axes", help="code units, like 0,3 (default: up to 8; a 2-D code as a grid)")
    s.add_argument("--steps", type=int, default=9, help="steps per unit (default 9)")
    s.add_argument("--span", type=float, default=2.5, help="± standard deviations (default 2.5)")
    s.add_argument("--layout", default="auto", help="auto, rows or grid")
    s.add_argument("--label", type=int, help="the class, for a conditional model")
    s.add_argument(
        "--data", help="data whose codes scale a model without a prior (default: its own)"
    )
    s.add_argument("--image-size", type=int)
    s.add_argument("--out", help="a .png picture or a .npy array")
    add_force_json(s)
    s.set_defaults(func=cmd_traverse)


SPEC = ApplicationSpec(
    id="traverse",
    name="Latent traversal",
    description="Decodes codes that move along chosen units, one row per unit or a grid over "
    "two, to show what each part of the code controls.",
    params=TraverseParams,
    run=lambda model, data, params: traverse(model, params, data),
    needs=frozenset({"decode"}),
    serves=serves,
    cli=add_command,
    panel="aelab.ui.panels.traverse:build",
    help=HELP,
)


@hookimpl
def register_applications(register):
    """Register latent traversal."""
    register(SPEC)
