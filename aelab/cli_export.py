"""The ``aelab export`` and ``aelab infer`` commands (registered by aelab.cli when present)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
# What `aelab infer` reads as an image: what the lab's quick check of an export accepts
# (aelab.ui.exporting.IMAGE_SUFFIXES, not imported here: infer runs without torch and gradio).
INFER_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")
# How the runtime's load errors name its verify=False; `aelab infer` says --no-verify instead.
NO_VERIFY_API = "verify=False (aelab infer --no-verify)"


def cmd_export(args: argparse.Namespace) -> int:
    """Export a saved run's graphs to ONNX, validated; print the folder written."""
    from .export import export_run

    graphs = [g for g in args.graphs.split(",")] if args.graphs is not None else None
    result = export_run(
        args.run,
        out_dir=args.out,
        graphs=graphs,
        force=args.force,
        allow_diverged=args.allow_diverged,
    )
    if args.json:
        print(json.dumps({"folder": str(result.folder), "manifest": result.manifest}))
        return 0
    # The table goes to stderr so that `$(aelab export RUN)` captures just the folder.
    print(result.summary(), file=sys.stderr)
    print(result.folder)
    return 0


def read_image(path: Path, input_shape: tuple[int, ...], preprocessing: dict | None) -> Any:
    """An image file (PNG, JPEG, ...) as one (1, C, H, W) float32 sample in [0, 1], at the
    export's channels and size."""
    import numpy as np
    from PIL import Image, UnidentifiedImageError

    from .runtime import RuntimeInputError, apply_scaling

    if len(input_shape) != 3 or input_shape[0] not in (1, 3):
        raise RuntimeInputError(
            f"This graph takes samples of shape {tuple(input_shape)}, not images; pass a .npy or "
            ".csv file."
        )
    channels, height, width = input_shape
    try:
        with Image.open(path) as img:
            img = img.convert("L" if channels == 1 else "RGB")
            if img.size != (width, height):
                img = img.resize((width, height), Image.Resampling.BILINEAR)
            pixels = np.asarray(img, dtype=np.uint8)
    except (OSError, UnidentifiedImageError) as exc:
        raise RuntimeInputError(f"{path} is not a readable image ({exc}).") from None
    pixels = pixels[None, None] if channels == 1 else pixels.transpose(2, 0, 1)[None]
    scaling = (preprocessing or {}).get("scaling") or {"method": "none"}
    # Image files hold 8-bit intensities; the recorded scaling is used when it was made for 8-bit
    # values (an image-folder run), otherwise the pixels map to [0, 1] by /255 (e.g. digits, whose
    # own raw values run 0-16, would otherwise be clipped to white).
    eight_bit = (scaling.get("method") == "divide" and float(scaling.get("scale", 0)) == 255.0) or (
        scaling.get("method") == "minmax" and np.ndim(scaling.get("min")) == 0
    )
    return apply_scaling(pixels, scaling if eight_bit else {"method": "divide", "scale": 255.0})


def _load_input(path: Path, model: Any, graph: str) -> tuple[Any, bool]:
    """The input array and whether it is already scaled (images are): a .npy array, a .csv of
    numbers (one sample per row, like a training CSV: an optional header, a label column left
    out) or an image file, as the lab's quick check of an export accepts."""
    import numpy as np

    from .runtime import RuntimeInputError

    if path.is_dir():
        raise RuntimeInputError(f"{path} is a folder; pass a .npy, .csv or image file.")
    if not path.is_file():
        raise RuntimeInputError(f"No input file at {path}.")
    suffix = path.suffix.lower()
    if suffix == ".npy":
        try:
            return np.load(path, allow_pickle=False), False
        except (OSError, ValueError) as exc:
            raise RuntimeInputError(f"{path} is not a plain .npy array ({exc}).") from None
    if suffix == ".csv":
        from .loaders import read_csv

        return read_csv(path).x, False
    if suffix in INFER_IMAGE_SUFFIXES:
        entry = next(g for g in model.manifest["graphs"] if g["name"] == graph)
        return read_image(path, model.input_shape(graph), entry["input"].get("preprocessing")), True
    images = ", ".join(INFER_IMAGE_SUFFIXES)
    raise RuntimeInputError(
        f"Input must be a .npy or .csv file or an image ({images}), not '{path.name}'."
    )


def _out_kind(text: str) -> str:
    """What ``--out`` asks for: '.npy', '.npz', '.png' or 'folder' (a path ending in / or one
    without a suffix: one PNG per sample)."""
    from .runtime import RuntimeInputError

    out = Path(text)
    suffix = out.suffix.lower()
    if text.endswith(("/", os.sep)) or not suffix:
        return "folder"
    if suffix in (".npy", ".npz", ".png"):
        return suffix
    raise RuntimeInputError(
        f"--out must end in .npy (first output), .npz (all outputs) or .png (one image), or name "
        f"a folder such as out/ (one PNG per sample), not '{out.name}'."
    )


def _check_out(out: Path, kind: str, force: bool) -> None:
    """Refuse, before any work, an output that exists (unless --force) or a folder that --force
    would replace although it holds more than PNG images."""
    from .apps.output import check_out
    from .runtime import RuntimeInputError

    check_out(out, force)
    if kind == "folder" and out.is_dir():
        others = [p.name for p in out.iterdir() if p.suffix.lower() != ".png" or not p.is_file()]
        if others:
            raise RuntimeInputError(
                f"{out} holds other files than PNG images (such as '{others[0]}'); --force "
                "replaces only a folder of PNGs, so name a new folder."
            )


def _as_images(arr: Any, name: str, graph: str) -> Any:
    """An output of shape (N, C, H, W), C 1 or 3, in [0, 1] as N uint8 images (H, W[, 3])."""
    import numpy as np

    from .runtime import RANGE_SLACK, RuntimeInputError

    where = f"Output '{name}' of graph '{graph}'"
    if arr.ndim != 4 or arr.shape[1] not in (1, 3):
        raise RuntimeInputError(
            f"{where} has shape {tuple(arr.shape)}, not images (N, C, H, W) with 1 or 3 "
            "channels; write it to a .npy or .npz file."
        )
    lo, hi = (float(arr.min()), float(arr.max())) if arr.size else (0.0, 0.0)
    if not (np.isfinite(lo) and np.isfinite(hi)) or lo < -RANGE_SLACK or hi > 1 + RANGE_SLACK:
        raise RuntimeInputError(
            f"{where} runs from {lo:.4g} to {hi:.4g}, outside the [0, 1] of an image; write it to "
            "a .npy or .npz file."
        )
    pixels = np.rint(np.clip(arr, 0.0, 1.0) * 255.0).astype(np.uint8).transpose(0, 2, 3, 1)
    return pixels[..., 0] if pixels.shape[-1] == 1 else pixels


def _write_png(pixels: Any, path: Path) -> None:
    from PIL import Image

    Image.fromarray(pixels, "L" if pixels.ndim == 2 else "RGB").save(path, format="PNG")


def _write(outputs: dict[str, Any], out: Path, kind: str, graph: str, force: bool) -> None:
    """Write the outputs as asked, atomically: complete or absent, never overwritten unless
    ``force``."""
    import numpy as np

    from .apps.output import atomic_output
    from .runtime import RuntimeInputError

    name, first = next(iter(outputs.items()))
    if kind in (".png", "folder"):
        images = _as_images(first, name, graph)
        if kind == ".png" and len(images) != 1:
            raise RuntimeInputError(
                f"Output '{name}' holds {len(images)} images, but {out.name} takes one; name a "
                "folder such as out/ for one PNG per sample."
            )
        with atomic_output(out, force, folder=kind == "folder") as tmp:
            if kind == ".png":
                _write_png(images[0], tmp)
            else:
                digits = max(5, len(str(len(images) - 1)))
                for i, pixels in enumerate(images):
                    _write_png(pixels, tmp / f"{i:0{digits}d}.png")
        return
    with atomic_output(out, force) as tmp, open(tmp, "wb") as fh:
        if kind == ".npz":
            np.savez(fh, **outputs)
        else:
            np.save(fh, first, allow_pickle=False)


def cmd_infer(args: argparse.Namespace) -> int:
    """Run one graph of an export on a .npy array, a .csv or an image and save the output."""
    from .runtime import RuntimeInputError, RuntimeLoadError, load

    kind = _out_kind(args.out)
    out = Path(args.out)
    _check_out(out, kind, args.force)  # before any work: an existing output is refused
    try:
        model = load(
            args.export, provider=args.provider, verify=not getattr(args, "no_verify", False)
        )
    except RuntimeLoadError as exc:  # the runtime's hints name its API; here it is a flag
        raise RuntimeLoadError(str(exc).replace(NO_VERIFY_API, "--no-verify")) from None
    graph = args.graph or model.graph_for("autoencoder")
    if graph is None:
        raise RuntimeInputError(
            f"Name a graph with --graph; this export has: {', '.join(model.graphs)}."
        )
    # A graph's name or a role; an unknown one fails here, before any file is read.
    graph = model.resolve(graph)
    x, scaled = _load_input(Path(args.input), model, graph)
    try:
        outputs = model.run(graph, x, preprocess=args.preprocess and not scaled)
    except RuntimeInputError as exc:  # the runtime's hints name its API; here it is a flag
        raise RuntimeInputError(str(exc).replace("preprocess=True", "--preprocess")) from None
    _write(outputs, out, kind, graph, args.force)
    shapes = ", ".join(f"{k} {tuple(v.shape)}" for k, v in outputs.items())
    print(f"wrote {out}: {graph} -> {shapes} on {model.provider}", file=sys.stderr)
    print(out)
    return 0


def register(subparsers: Any) -> None:
    """Add ``export`` and ``infer`` to the aelab command."""
    s = subparsers.add_parser("export", help="export a saved run to validated ONNX files")
    s.add_argument("run", help="run id or run folder")
    s.add_argument(
        "--out", help="folder to write (default: exports/<run-id>/, root from AELAB_EXPORTS_DIR)"
    )
    s.add_argument(
        "--graphs",
        help="comma-separated graphs to export, by name or by role (default: every graph)",
    )
    s.add_argument("--force", action="store_true", help="replace an existing export")
    s.add_argument(
        "--allow-diverged",
        action="store_true",
        help="export a run whose training diverged (its last good weights); refused otherwise",
    )
    s.add_argument("--json", action="store_true", help="print the folder and manifest as JSON")
    s.set_defaults(func=cmd_export)

    s = subparsers.add_parser("infer", help="run an exported graph with onnxruntime (no torch)")
    s.add_argument("export", help="export folder or .onnx file")
    s.add_argument(
        "input",
        help=".npy array, .csv of numbers (one sample per row) or image "
        f"({', '.join(INFER_IMAGE_SUFFIXES)})",
    )
    s.add_argument(
        "--graph",
        help="graph to run, by name or by role (encoder, decoder, ...; default: the autoencoder)",
    )
    s.add_argument(
        "--out",
        required=True,
        help="output: .npy (first output) or .npz (all outputs); for image outputs (N, C, H, W) "
        "in [0, 1] also .png (one sample) or a folder such as out/ (one PNG per sample)",
    )
    s.add_argument(
        "--force", action="store_true", help="replace an existing output (refused otherwise)"
    )
    s.add_argument(
        "--preprocess",
        action="store_true",
        help="scale a raw .npy or .csv with the export's recorded scaling (images always are)",
    )
    s.add_argument("--provider", default="auto", choices=["auto", "cpu", "cuda"])
    s.add_argument(
        "--no-verify",
        action="store_true",
        help="load graph files without checking them against the sha256 in manifest.json "
        "(files changed on purpose, or an export written without checksums)",
    )
    s.set_defaults(func=cmd_infer)
