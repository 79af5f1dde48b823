"""Does training through the lab cost speed? UI training generator vs aelab.train.train.

Both train the same model on the same data with the same seed, in this process, alternating
(direct, UI, direct, UI, ...) so that load from elsewhere hits both alike. The UI side is the
generator behind the Train button, consumed as gradio would: every plot frame, grid image and
status line it yields is built. Prints a markdown table and writes benchmarks/results/ui.md.

    .venv/bin/python benchmarks/bench_ui.py [--model autoencoder] [--epochs 150] [--repeats 5]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")


def run_direct(spec, params, data, config) -> tuple[float, float, int]:
    """(trainer samples/s, wall-clock samples/s, updates) for aelab.train.train."""
    from aelab.train import Done, train

    t0 = time.perf_counter()
    done = None
    for event in train(spec, params, data, config):
        if isinstance(event, Done):
            done = event
    wall = time.perf_counter() - t0
    n = len(data.split(config.val_fraction, config.seed)[0]) * done.epochs_done
    return done.samples_per_s, n / wall, 0


def run_ui(model_id, params, data, config) -> tuple[float, float, int]:
    """The same through the lab's training generator (what the Train button streams)."""
    from aelab.ui.session import LabSession
    from aelab.ui.training import start_training

    session = LabSession()
    t0 = time.perf_counter()
    updates = 0
    result = None
    for _status, _plot, _grid, res, _run in start_training(
        session, model_id, "digits", None, params, config.model_dump()
    ):
        updates += 1
        result = res or result
    wall = time.perf_counter() - t0
    n = len(data.split(config.val_fraction, config.seed)[0]) * result["epochs_done"]
    return result["samples_per_s"], n / wall, updates


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="autoencoder")
    parser.add_argument("--epochs", type=int, default=150)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "ui.md"))
    args = parser.parse_args()

    import torch

    from aelab.data import load_data
    from aelab.params import TrainConfig
    from aelab.plugins import get_model

    torch.set_num_threads(min(2, torch.get_num_threads()))
    os.environ["AELAB_RUNS_DIR"] = tempfile.mkdtemp(prefix="aelab-bench-ui-")
    spec = get_model(args.model)
    params = {"code_size": 8, "layers": 2, "nodes": 128} if args.model == "autoencoder" else {}
    config = TrainConfig(epochs=args.epochs, seed=0, device="cpu")
    data = load_data("digits")
    run_direct(spec, params, data, config.model_copy(update={"epochs": 1}))  # warm-up

    direct, ui = [], []
    for _ in range(args.repeats):
        direct.append(run_direct(spec, params, data, config))
        ui.append(run_ui(args.model, params, data, config))

    def med(rows, i):
        return statistics.median(r[i] for r in rows)

    # Each UI run is paired with the direct run just before it; the spread shows the noise.
    pairs = sorted(u[0] / d[0] for u, d in zip(ui, direct, strict=True))
    ratio_trainer = med(ui, 0) / med(direct, 0)
    ratio_wall = med(ui, 1) / med(direct, 1)
    verdict = "pass" if min(ratio_trainer, ratio_wall) >= 0.95 else "FAIL"
    table = "\n".join(
        [
            "| path | samples/s (trainer) | samples/s (wall clock) | page updates |",
            "|---|---:|---:|---:|",
            f"| aelab.train.train | {med(direct, 0):,.0f} | {med(direct, 1):,.0f} | – |",
            f"| lab training generator | {med(ui, 0):,.0f} | {med(ui, 1):,.0f} | {med(ui, 2):.0f} |",
            f"| **ratio UI / direct** | **{ratio_trainer:.3f}** | **{ratio_wall:.3f}** | "
            f"target ≥ 0.95: {verdict} |",
            "| pairwise ratios (trainer), low to high | "
            + ", ".join(f"{r:.3f}" for r in pairs)
            + " | | |",
        ]
    )
    header = (
        f"# Lab training overhead\n\n`{args.model}` on digits, {args.epochs} epochs, batch "
        f"{config.batch_size}, seed 0, CPU ({platform.processor() or platform.machine()}, torch "
        f"threads {torch.get_num_threads()}); median of {args.repeats} alternating runs each.\n"
        "Trainer samples/s is what `Done.samples_per_s` reports (time inside the epoch loops, "
        "including time spent while the consumer handles a yielded event); wall clock counts "
        "everything from the first event to the last.\n\n"
        f"Command: `.venv/bin/python benchmarks/bench_ui.py --model {args.model} "
        f"--epochs {args.epochs} --repeats {args.repeats}`\n\n"
    )
    print(table)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(header + table + "\n", encoding="utf-8")
    print(f"\nwrote {args.out}")
    return 0 if verdict == "pass" else 1


if __name__ == "__main__":
    sys.exit(main())
