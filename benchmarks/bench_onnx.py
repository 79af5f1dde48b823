"""onnxruntime (CPU provider) against torch eager on every registered model's autoencoder graph.

Usage: python benchmarks/bench_onnx.py [--threads N] [--models a,b] [--budget S] [--out PATH]

Each model is built with its default hyperparameters for digits-shaped input (1, 8, 8), or
flat (64,) input when it takes no images, exported (and validated) through aelab.export, and
timed at batch 1 (latency), 64 and 1024 (throughput). Both sides use the same thread count;
torch runs under torch.inference_mode, onnxruntime with aelab.runtime.session_options.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

# onnxruntime writes a device id and a telemetry database under ~/.cache at import unless this
# is set first (its Privacy.md); nothing of this program needs to leave the machine.
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
import onnxruntime as ort  # noqa: E402
import torch
from onnx import TensorProto, helper

from aelab import runtime
from aelab.export import export_model
from aelab.plugins import get_models

BATCHES = (1, 64, 1024)
WARMUP = 20
ROUNDS = 9


def _call_time(fn: Callable[[], object], seconds: float) -> float:
    """Median seconds per call over about ``seconds`` of repeated calls (at least 5)."""
    times: list[float] = []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end or len(times) < 5:
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _paired(fns: dict[str, Callable[[], object]], budget: float) -> dict[str, list[float]]:
    """Per-round median call times of each function, the functions interleaved round by round.

    The machines are shared: a burst of load lands on one round of every side, not on the whole
    measurement of one side, so ratios taken round by round stay fair.
    """
    for fn in fns.values():
        for _ in range(WARMUP):
            fn()
    per_call = budget / (ROUNDS * len(fns))
    out: dict[str, list[float]] = {k: [] for k in fns}
    names = list(fns)
    for r in range(ROUNDS):
        for k in names[r % len(names) :] + names[: r % len(names)]:  # rotate who goes first
            out[k].append(_call_time(fns[k], per_call))
    return out


def _ratio(rounds: dict[str, list[float]], num: str, den: str) -> float:
    """Median over rounds of num time / den time."""
    return statistics.median(a / b for a, b in zip(rounds[num], rounds[den]))


def empty_graph(shape: tuple[int, ...]) -> bytes:
    """An ONNX graph holding one Identity node: what any session.run call costs at the least."""
    dims = ["batch", *shape]
    graph = helper.make_graph(
        [helper.make_node("Identity", ["input"], ["output"])],
        "empty",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, dims)],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, dims)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=10)
    return model.SerializeToString()


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def bench_model(model_id: str, threads: int, budget: float, workdir: Path) -> dict | None:
    """Timings for one model's autoencoder graph, or None when it has no such graph."""
    spec = get_models()[model_id]
    shape, kind = ((1, 8, 8), "image") if "image" in spec.accepts else ((64,), "flat")
    torch.manual_seed(0)
    model = spec.build(None, shape, kind).eval()
    whole = next((g.name for g in model.graphs() if g.role == "autoencoder"), None)
    if whole is None:
        return None
    meta = {"kind": kind, "sample_shape": list(shape), "scaling": {"method": "none"}}
    export_model(
        model,
        spec,
        model.params,
        run_id=model_id,
        data_meta=meta,
        out_dir=workdir / model_id,
        graphs=[whole],
    )
    exported = runtime.load(workdir / model_id, provider="cpu", threads=threads)
    session = exported._sessions[whole]  # the bare session: no input checks in the timing
    empty = ort.InferenceSession(
        empty_graph(shape), runtime.session_options(threads), providers=["CPUExecutionProvider"]
    )
    rng = np.random.default_rng(0)
    row = {"model": model_id, "params": sum(p.numel() for p in model.parameters())}
    for batch in BATCHES:
        x = rng.random((batch, *shape), dtype=np.float32)
        xt = torch.from_numpy(x)

        def run_torch(xt: torch.Tensor = xt) -> object:
            with torch.inference_mode():
                return model.reconstruct(xt)

        def run_ort(x: np.ndarray = x) -> object:
            return session.run(None, {"input": x})

        fns = {"torch": run_torch, "ort": run_ort}
        if batch == 1:
            fns["empty"] = lambda x=x: empty.run(None, {"input": x})
            fns["runtime"] = lambda x=x: exported.reconstruct(x)
        rounds = _paired(fns, budget * len(fns) / 2)
        for k, ts in rounds.items():
            row[f"{k}_{batch}"] = statistics.median(ts)
        row[f"x_{batch}"] = _ratio(rounds, "torch", "ort")
        if batch == 1:
            row["ceiling_1"] = _ratio(rounds, "torch", "empty")
    return row


def table(rows: list[dict]) -> str:
    """The results as a markdown table."""
    lines = [
        "| model | params | b1 torch µs | b1 ORT µs | b1 × | b1 empty graph µs | b1 ceiling × "
        "| b64 torch /s | b64 ORT /s | b64 × | b1024 torch /s | b1024 ORT /s | b1024 × "
        "| b1 aelab.runtime µs |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for r in rows:
        cells = [
            r["model"],
            f"{r['params']:,}",
            f"{r['torch_1'] * 1e6:.1f}",
            f"{r['ort_1'] * 1e6:.1f}",
            f"**{r['x_1']:.1f}**",
            f"{r['empty_1'] * 1e6:.1f}",
            f"{r['ceiling_1']:.1f}",
        ]
        for b in BATCHES[1:]:
            cells += [
                f"{b / r[f'torch_{b}']:,.0f}",
                f"{b / r[f'ort_{b}']:,.0f}",
                f"**{r[f'x_{b}']:.2f}**",
            ]
        cells.append(f"{r['runtime_1'] * 1e6:.1f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark, print the markdown report and write it to --out."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=runtime.default_threads())
    p.add_argument("--models", help="comma-separated model ids (default: every registered model)")
    p.add_argument("--budget", type=float, default=0.3, help="seconds of timing per measurement")
    p.add_argument("--out", default=str(Path(__file__).parent / "results" / "onnx.md"))
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    ids = args.models.split(",") if args.models else sorted(get_models())
    rows, skipped = [], []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for model_id in ids:
            row = bench_model(model_id, args.threads, args.budget, Path(tmp))
            if row is None:
                skipped.append(model_id)
            else:
                rows.append(row)
                print(f"  {model_id}: done", file=sys.stderr, flush=True)
    opts = runtime.session_options(args.threads)
    report = "\n".join(
        [
            "# ONNX Runtime vs torch eager (autoencoder graph)",
            "",
            f"Command: `python benchmarks/bench_onnx.py --threads {args.threads} --budget {args.budget}`",
            "",
            f"Machine: {_cpu_name()}, {os.cpu_count()} logical cores; torch {torch.__version__}, "
            f"onnxruntime {ort.__version__}, CPUExecutionProvider; {args.threads} thread(s) on both sides.",
            f"Session options: graph_optimization_level={opts.graph_optimization_level.name}, "
            f"execution_mode={opts.execution_mode.name}, intra_op_num_threads={opts.intra_op_num_threads}, "
            f"inter_op_num_threads={opts.inter_op_num_threads}.",
            "Models use default hyperparameters on digits-shaped input (1, 8, 8), untrained weights.",
            f"Each side is timed in {ROUNDS} interleaved rounds; times are medians, and × is the median "
            "over rounds of torch time / ORT time.",
            "b1: latency per call; b64/b1024: samples per second. *Empty graph* is one Identity node "
            "on the same input: the least any `session.run` call costs here. *Ceiling* = torch time / "
            "empty-graph time, the most any ONNX graph could reach against this torch model. The "
            "last column is `aelab.runtime`'s `reconstruct` (input checks included).",
            "",
            table(rows),
            "",
            f"Models without an autoencoder graph (not timed): {', '.join(skipped) or 'none'}.",
            f"Total run time: {time.perf_counter() - started:.0f} s.",
            "",
        ]
    )
    print(report)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(report, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
