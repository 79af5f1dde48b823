"""Run an aelab export with plain onnxruntime: no aelab, no torch, just numpy and the manifest.

Usage: python consumer.py EXPORT_DIR [RAW_INPUT.npy]

Without an input it feeds a seeded random batch. It prints one JSON line describing what ran.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path

import numpy as np

# onnxruntime writes a device id and a telemetry database under ~/.cache at import unless this
# is set first (its Privacy.md); nothing of this program needs to leave the machine.
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
import onnxruntime as ort  # noqa: E402


def scale(raw: np.ndarray, scaling: dict) -> np.ndarray:
    """Raw values to [0, 1] exactly as the training data was scaled (recorded in the manifest)."""
    x = np.asarray(raw, dtype=np.float64)
    method = scaling.get("method", "none")
    if method == "divide":
        x = x / scaling["scale"]
    elif method == "minmax":
        lo, hi = np.asarray(scaling["min"]), np.asarray(scaling["max"])
        x = (x - lo) / np.where(hi > lo, hi - lo, 1.0)
    return np.clip(x, 0.0, 1.0).astype(np.float32)


def main(argv: list[str]) -> int:
    folder = Path(argv[1])
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    graphs = {g["name"]: g for g in manifest["graphs"]}
    for g in graphs.values():  # refuse files that changed since they were validated
        if hashlib.sha256((folder / g["file"]).read_bytes()).hexdigest() != g["sha256"]:
            raise SystemExit(f"{g['file']} does not match its sha256 in the manifest")

    # Prefer the graph whose role is autoencoder (data -> reconstruction), whatever its name;
    # exports written before roles were recorded name it "autoencoder". Otherwise take the first.
    graph = next(
        (g for g in graphs.values() if g.get("role", g["name"]) == "autoencoder"),
        manifest["graphs"][0],
    )
    spec = graph["input"]
    shape = tuple(spec["shape"][1:])  # shape[0] is the dynamic batch axis, "batch"
    rng = np.random.default_rng(0)
    if len(argv) > 2:
        raw = np.load(argv[2], allow_pickle=False)
        x = scale(raw, spec["preprocessing"]["scaling"]).reshape(-1, *shape)
    elif spec["range"] is not None:  # data input: values in the recorded range
        lo, hi = spec["range"]
        x = (lo + (hi - lo) * rng.random((4, *shape))).astype(np.float32)
    else:  # codes or noise: drawn from N(0, I)
        x = rng.standard_normal((4, *shape), dtype=np.float32)

    session = ort.InferenceSession(str(folder / graph["file"]), providers=["CPUExecutionProvider"])
    outputs = session.run(None, {spec["name"]: x})
    result = {
        "model": manifest["model"],
        "graph": graph["name"],
        "provider": session.get_providers()[0],
        "outputs": {o["name"]: list(v.shape) for o, v in zip(graph["outputs"], outputs)},
        "means": {o["name"]: float(v.mean()) for o, v in zip(graph["outputs"], outputs)},
    }
    if graph.get("role", graph["name"]) == "autoencoder":
        result["reconstruction_mse"] = float(np.mean((outputs[0] - x) ** 2))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
