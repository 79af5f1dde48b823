"""onnxruntime (CPU provider) against torch eager on every registered model's autoencoder graph.

Usage: python benchmarks/bench_onnx.py [--threads N] [--models a,b] [--budget S] [--out PATH]

Each model is built with its default hyperparameters for digits-shaped input (1, 8, 8), or
flat (64,) input when it takes no images, exported (and validated) through aelab.export, and
timed at batch 1 (latency), 64 and 1024 (throughput). Both sides use the same thread count;
torch runs under torch.inference_mode, onnxruntime with aelab.runtime.session_options.

The aim (issue 13): at batch 1 each model's onnxruntime latency is within 2x of the empty-graph
floor measured in the same run, or at least 5x faster than torch eager, whichever is easier; at
batch 1024 onnxruntime is at least 1.2x faster than torch eager. The table says per model whether
the batch-1 aim is met and marks a batch-1024 miss in bold.
"""

from __future__ import annotations

import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from _common import parser, publish, results_file

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
# The aim (issue 13). Batch 1: ORT time <= FLOOR_AIM x empty-graph time, or torch / ORT >=
# SPEEDUP_AIM[1]. Batch 1024: torch / ORT >= SPEEDUP_AIM[1024].
FLOOR_AIM = 2.0
SPEEDUP_AIM = {1: 5.0, 1024: 1.2}
AIM = (
    f"The aim: at batch 1, onnxruntime within {FLOOR_AIM:g}× of the empty-graph floor measured in "
    f"the same run, or ≥ {SPEEDUP_AIM[1]:g}× torch eager, whichever is easier (the floor caps what "
    f"any ONNX graph can reach against the smallest models); ≥ {SPEEDUP_AIM[1024]:g}× torch eager "
    "at batch 1024."
)


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


def _ratios(rounds: dict[str, list[float]], num: str, den: str) -> list[float]:
    """Round by round, num time / den time."""
    return [a / b for a, b in zip(rounds[num], rounds[den])]


def aim_met(row: dict, batch: int) -> bool:
    """Whether the row meets the aim at ``batch`` (1 or 1024; see AIM)."""
    fast = row[f"x_{batch}"] >= SPEEDUP_AIM[batch]
    near_floor = batch == 1 and row["floor_1"] <= FLOOR_AIM
    return fast or near_floor


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
        speedups = _ratios(rounds, "torch", "ort")
        row[f"x_{batch}"] = statistics.median(speedups)
        row[f"x_{batch}_range"] = (min(speedups), max(speedups))
        if batch == 1:
            row["ceiling_1"] = statistics.median(_ratios(rounds, "torch", "empty"))
            row["floor_1"] = statistics.median(_ratios(rounds, "ort", "empty"))
    return row


def _us(key: str) -> Callable[[dict], str]:
    return lambda r: f"{r[key] * 1e6:.1f}"


def _per_s(side: str, batch: int) -> Callable[[dict], str]:
    return lambda r: f"{batch / r[f'{side}_{batch}']:,.0f}"


def _bold_unless(text: str, ok: bool) -> str:
    return text if ok else f"**{text}**"


def _aim_cell(r: dict) -> str:
    met = aim_met(r, 1)
    return _bold_unless("yes" if met else "no", met)


def _speedup(batch: int) -> Callable[[dict], str]:
    """torch / ORT with its range over rounds, bold where it misses the aim at this batch."""

    def cell(r: dict) -> str:
        lo, hi = r[f"x_{batch}_range"]
        text = f"{r[f'x_{batch}']:.2f}"
        if batch in SPEEDUP_AIM:
            text = _bold_unless(text, aim_met(r, batch))
        return f"{text} ({lo:.2f}–{hi:.2f})"

    return cell


# (header, right-aligned, cell) for each column of the results table.
COLUMNS: list[tuple[str, bool, Callable[[dict], str]]] = [
    ("model", False, lambda r: r["model"]),
    ("params", True, lambda r: f"{r['params']:,}"),
    ("b1 torch µs", True, _us("torch_1")),
    ("b1 ORT µs", True, _us("ort_1")),
    ("b1 ×", True, lambda r: f"{r['x_1']:.1f}"),
    ("b1 empty graph µs", True, _us("empty_1")),
    ("b1 ceiling ×", True, lambda r: f"{r['ceiling_1']:.1f}"),
    ("b1 onnxruntime / empty graph", True, lambda r: f"{r['floor_1']:.2f}"),
    ("batch-1 aim met", False, _aim_cell),
    *[
        col
        for b in BATCHES[1:]
        for col in (
            (f"b{b} torch /s", True, _per_s("torch", b)),
            (f"b{b} ORT /s", True, _per_s("ort", b)),
            (f"b{b} × (rounds)", True, _speedup(b)),
        )
    ],
    ("b1 aelab.runtime µs", True, _us("runtime_1")),
]


def table(rows: list[dict]) -> str:
    """The results as a markdown table."""
    lines = [
        "| " + " | ".join(h for h, _, _ in COLUMNS) + " |",
        "|" + "|".join("--:" if right else "---" for _, right, _ in COLUMNS) + "|",
    ]
    lines += ["| " + " | ".join(cell(r) for _, _, cell in COLUMNS) + " |" for r in rows]
    return "\n".join(lines)


def summary(rows: list[dict]) -> str:
    """How many models meet the aim at batch 1 and at batch 1024, naming those that miss."""
    parts = []
    for batch in SPEEDUP_AIM:
        missed = [r["model"] for r in rows if not aim_met(r, batch)]
        met = f"{len(rows) - len(missed)} of {len(rows)} models"
        parts.append(
            f"batch {batch}: {met}" + (f" (missed: {', '.join(missed)})" if missed else "")
        )
    return "Aim met at " + "; ".join(parts) + "."


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark, print the markdown report and write it to --out."""
    p = parser(__doc__)
    p.add_argument("--threads", type=int, default=runtime.default_threads())
    p.add_argument("--models", help="comma-separated model ids (default: every registered model)")
    p.add_argument("--budget", type=float, default=0.3, help="seconds of timing per measurement")
    p.add_argument("--out", default=str(results_file("onnx.md")))
    p.add_argument("--no-write", action="store_true", help="print only")
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
            "Models use default hyperparameters on digits-shaped input (1, 8, 8), or flat (64,) input "
            "when they take no images; untrained weights.",
            "",
            AIM,
            "*onnxruntime / empty graph* is the median over rounds of ORT time / empty-graph time at "
            "batch 1; *batch-1 aim met* is yes when that is ≤ "
            f"{FLOOR_AIM:g} or b1 × is ≥ {SPEEDUP_AIM[1]:g}. Bold marks a miss.",
            "",
            f"Each side is timed in {ROUNDS} interleaved rounds; times are medians, and × is the median "
            "over rounds of torch time / ORT time (its lowest and highest round in brackets).",
            "b1: latency per call; b64/b1024: samples per second. *Empty graph* is one Identity node "
            "on the same input: the least any `session.run` call costs here. *Ceiling* = torch time / "
            "empty-graph time, the most any ONNX graph could reach against this torch model. The "
            "last column is `aelab.runtime`'s `reconstruct` (input checks included).",
            "",
            table(rows),
            "",
            summary(rows),
            f"Models without an autoencoder graph (not timed): {', '.join(skipped) or 'none'}.",
            f"Total run time: {time.perf_counter() - started:.0f} s.",
            "",
        ]
    )
    publish(report, Path(args.out), write=not args.no_write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
