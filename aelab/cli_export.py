"""The ``aelab export`` and ``aelab infer`` commands (registered by aelab.cli when present)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


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
        print(json.dumps({"folder": str(result.folder), "manifest": result.manifest}, indent=2))
        return 0
    # The table goes to stderr so that `$(aelab export RUN)` captures just the folder.
    print(result.summary(), file=sys.stderr)
    print(result.folder)
    return 0


def read_image(path: Path, input_shape: tuple[int, ...], preprocessing: dict | None) -> Any:
    """A PNG/JPEG as one (1, C, H, W) float32 sample in [0, 1], at the export's channels and size."""
    import numpy as np
    from PIL import Image, UnidentifiedImageError

    from .runtime import RuntimeInputError, apply_scaling

    if len(input_shape) != 3 or input_shape[0] not in (1, 3):
        raise RuntimeInputError(
            f"This graph takes samples of shape {tuple(input_shape)}, not images; pass a .npy file."
        )
    channels, height, width = input_shape
    try:
        with Image.open(path) as img:
            img = img.convert("L" if channels == 1 else "RGB")
            if img.size != (width, height):
                img = img.resize((width, height), Image.Resampling.BILINEAR)
            pixels = np.asarray(img, dtype=np.uint8)
    except (OSError, UnidentifiedImageError) as exc:
        raise RuntimeInputError(f"{path} is not a readable PNG or JPEG image ({exc}).") from None
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
    """The input array and whether it is already scaled (images are)."""
    import numpy as np

    from .runtime import RuntimeInputError

    if not path.is_file():
        raise RuntimeInputError(f"No input file at {path}.")
    suffix = path.suffix.lower()
    if suffix == ".npy":
        try:
            return np.load(path, allow_pickle=False), False
        except (OSError, ValueError) as exc:
            raise RuntimeInputError(f"{path} is not a plain .npy array ({exc}).") from None
    if suffix in IMAGE_SUFFIXES:
        entry = next(g for g in model.manifest["graphs"] if g["name"] == graph)
        return read_image(path, model.input_shape(graph), entry["input"].get("preprocessing")), True
    raise RuntimeInputError(f"Input must be a .npy file or a PNG/JPEG image, not '{path.name}'.")


def cmd_infer(args: argparse.Namespace) -> int:
    """Run one graph of an export on a .npy array or an image and save the output."""
    import numpy as np

    from .runtime import RuntimeInputError, load

    out = Path(args.out)
    if out.suffix.lower() not in (".npy", ".npz"):
        raise RuntimeInputError(
            f"--out must end in .npy (first output) or .npz (all outputs), not '{out.name}'."
        )
    model = load(args.export, provider=args.provider)
    graph = args.graph or model.graph_for("autoencoder")
    if graph is None:
        raise RuntimeInputError(
            f"Name a graph with --graph; this export has: {', '.join(model.graphs)}."
        )
    # A graph's name or a role; an unknown one fails here, before any file is read.
    graph = model.resolve(graph)
    x, scaled = _load_input(Path(args.input), model, graph)
    outputs = model.run(graph, x, preprocess=args.preprocess and not scaled)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix.lower() == ".npz":
        np.savez(out, **outputs)
    else:
        np.save(out, next(iter(outputs.values())), allow_pickle=False)
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
    s.add_argument("input", help=".npy array or PNG/JPEG image")
    s.add_argument(
        "--graph",
        help="graph to run, by name or by role (encoder, decoder, ...; default: the autoencoder)",
    )
    s.add_argument("--out", required=True, help="output .npy (first output) or .npz (all outputs)")
    s.add_argument(
        "--preprocess",
        action="store_true",
        help="scale a raw .npy with the export's recorded scaling (images always are)",
    )
    s.add_argument("--provider", default="auto", choices=["auto", "cpu", "cuda"])
    s.set_defaults(func=cmd_infer)
