"""Streaming vs in-memory training on an image folder larger than the memory the process may use.

Run: .venv/bin/python benchmarks/bench_stream.py [--n 60000] [--limit-mb 2048] [--subset 8000]

Writes a folder of synthetic 64x64 RGB PNGs once (coloured shapes and stripes on gradients, in
class sub-folders; kept under the system's temporary folder, or ``--folder``), then trains
aelab's autoencoder for one epoch with ``aelab train ... --json``, each run in a fresh process
whose memory is capped with ``RLIMIT_DATA`` (and whose ``AELAB_MAX_DATA_MB`` is the same limit;
``RLIMIT_AS`` does not work for torch, which reserves address space it never uses):

- the whole folder held in memory (``--stream off``): refused, or stopped by the cap;
- the whole folder streamed (``--stream auto``): it trains, with its peak memory under the cap;
- a subset that fits (hard links to the first images), held in memory and streamed, in
  interleaved rounds: samples/s and peak memory side by side.

Peak memory: ``ru_maxrss`` of the training process (``os.wait4``; the largest process of its
tree, reader processes included), the largest sum of the proportional set size (PSS) of the
process and its reader processes, and the largest VmData (what RLIMIT_DATA counts), polled from
/proc every 0.2 s.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import signal
import statistics
import subprocess
import sys
import threading
import time
from multiprocessing import Pool
from pathlib import Path
from typing import Any

import numpy as np
from _common import cache_dir, interleave, pair_ratios, parse, parser, publish, results_file
from _common import results_head as head

COMMAND = ".venv/bin/python benchmarks/bench_stream.py"
CLASSES = ("circles", "squares", "triangles", "stripes")
SIZE = 64
MARKER = ".aelab-bench-complete"  # written last: the folder holds all its images
MB = 2**20
POLL_S = 0.2
RLIMITS = {"as": resource.RLIMIT_AS, "data": resource.RLIMIT_DATA}
RLIMIT_NAMES = {"as": "RLIMIT_AS", "data": "RLIMIT_DATA"}


# -- the image folder -----------------------------------------------------------------------


def draw(i: int) -> np.ndarray:
    """Image ``i`` (uint8, 64x64x3): a two-colour gradient at a random angle with one shape of
    class ``i % 4`` (a disc, a square, a triangle, or sine stripes) in another colour, and mild
    noise; the same image for the same ``i``."""
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(i)
    yy, xx = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32) / (SIZE - 1)
    angle = rng.uniform(0, 2 * np.pi)
    t = np.clip(0.5 + (xx - 0.5) * np.cos(angle) + (yy - 0.5) * np.sin(angle), 0, 1)
    c0, c1 = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
    img = Image.fromarray((c0 + (c1 - c0) * t[..., None]).astype(np.uint8), "RGB")
    pen = ImageDraw.Draw(img)
    colour = tuple(int(v) for v in rng.integers(0, 256, 3))
    kind = CLASSES[i % len(CLASSES)]
    r = rng.uniform(8, 22)
    cx, cy = rng.uniform(r, SIZE - r, 2)
    if kind == "circles":
        pen.ellipse([cx - r, cy - r, cx + r, cy + r], fill=colour)
    elif kind == "squares":
        pen.rectangle([cx - r, cy - r, cx + r, cy + r], fill=colour)
    elif kind == "triangles":
        turn = rng.uniform(0, 2 * np.pi)
        corners = [
            (cx + r * np.cos(turn + k * 2 * np.pi / 3), cy + r * np.sin(turn + k * 2 * np.pi / 3))
            for k in range(3)
        ]
        pen.polygon(corners, fill=colour)
    out = np.asarray(img, dtype=np.float32)
    if kind == "stripes":
        freq, tilt = rng.uniform(2, 8), rng.uniform(0, np.pi)
        wave = 0.5 + 0.5 * np.sin(2 * np.pi * freq * (xx * np.cos(tilt) + yy * np.sin(tilt)))
        out = out * (1 - wave[..., None]) + np.asarray(colour, np.float32) * wave[..., None]
    out += rng.normal(0, 3, out.shape)
    return np.clip(out, 0, 255).round().astype(np.uint8)


def _write_some(job: tuple[str, list[int]]) -> None:
    from PIL import Image

    folder, indices = job
    for i in indices:
        path = Path(folder) / CLASSES[i % len(CLASSES)] / f"{i:06d}.png"
        Image.fromarray(draw(i), "RGB").save(path, compress_level=1)


def image_folder(folder: Path, n: int) -> tuple[Path, float]:
    """``folder`` holding images 0..n-1 in class sub-folders, written unless a complete folder of
    ``n`` is already there; the seconds spent writing (0 when reused)."""
    marker = folder / MARKER
    if marker.exists() and marker.read_text().strip() == str(n):
        return folder, 0.0
    t0 = time.perf_counter()
    for name in CLASSES:
        (folder / name).mkdir(parents=True, exist_ok=True)
        for old in (folder / name).glob("*.png"):  # a folder of another size or cut short
            old.unlink()
    marker.unlink(missing_ok=True)
    chunks = [(str(folder), list(range(s, min(s + 1000, n)))) for s in range(0, n, 1000)]
    with Pool(os.cpu_count() or 1) as pool:
        for _ in pool.imap_unordered(_write_some, chunks):
            pass
    marker.write_text(f"{n}\n")
    return folder, time.perf_counter() - t0


def subset_folder(big: Path, n: int) -> Path:
    """A folder of hard links to the first ``n`` images of ``big`` (copies where links fail)."""
    folder = big.parent / f"{big.name}-first-{n}"
    marker = folder / MARKER
    if marker.exists() and marker.read_text().strip() == str(n):
        return folder
    for name in CLASSES:
        (folder / name).mkdir(parents=True, exist_ok=True)
        for old in (folder / name).glob("*.png"):
            old.unlink()
    for i in range(n):
        rel = Path(CLASSES[i % len(CLASSES)]) / f"{i:06d}.png"
        try:
            os.link(big / rel, folder / rel)
        except OSError:
            (folder / rel).write_bytes((big / rel).read_bytes())
    marker.write_text(f"{n}\n")
    return folder


def disk_mb(folder: Path) -> float:
    """The PNG files' size in MB."""
    return sum(p.stat().st_size for p in folder.glob("*/*.png")) / MB


# -- one training run in a capped process ---------------------------------------------------


def _tree(pid: int) -> list[int]:
    """``pid`` and its descendants (through /proc/<pid>/task/<tid>/children)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as f:
                    todo += [int(c) for c in f.read().split()]
        except OSError:
            continue
    return out


def _kb(path: str, key: str) -> int:
    """The ``key:`` line of a /proc file, in kB (0 once the process has gone)."""
    try:
        with open(path) as f:
            for line in f:
                if line.startswith(key):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def run_train(
    folder: Path, stream: str, limit_mb: int, config: dict[str, Any], timeout: float = 900
) -> dict[str, Any]:
    """``aelab train autoencoder --data folder --stream <stream> --json`` in a fresh process whose
    memory is capped at ``limit_mb`` (``config["rlimit"]``: RLIMIT_DATA by default) and whose
    AELAB_MAX_DATA_MB is the same (``config["guard_mb"]`` to set another); what happened, how
    fast, and its peak memory. A run still going after ``timeout`` seconds is killed."""
    cmd = [sys.executable, "-m", "aelab", "train", "autoencoder", "--data", str(folder)]
    cmd += ["--stream", stream, "--json", "--epochs", "1", "--seed", "0"]
    cmd += ["--batch-size", str(config["batch_size"])]
    if config.get("workers") is not None:
        cmd += ["--workers", str(config["workers"])]
    env = {
        **os.environ,
        "AELAB_MAX_DATA_MB": str(config.get("guard_mb", limit_mb)),
        "AELAB_RUNS_DIR": str(cache_dir("stream-runs")),
        "OMP_NUM_THREADS": str(config["threads"]),
        "PYTHONPATH": str(Path(__file__).resolve().parent.parent),
    }
    cap = limit_mb * MB
    kind = RLIMITS[config.get("rlimit", "data")]

    def limit() -> None:  # in the child, before it runs Python: inherited by its readers
        resource.setrlimit(kind, (cap, cap))

    print(f"  {' '.join(cmd[3:])} (cap {limit_mb} MB)", file=sys.stderr)
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, preexec_fn=limit, text=True
    )
    out: dict[str, str] = {}
    readers = [
        threading.Thread(target=lambda k=k, s=s: out.__setitem__(k, s.read()), daemon=True)
        for k, s in (("stdout", proc.stdout), ("stderr", proc.stderr))
    ]
    for t in readers:
        t.start()
    peak_pss = peak_data = 0
    hung = False
    # WNOWAIT: look without collecting the child, so that wait4 below gets its resource usage.
    while os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is None:
        tree = _tree(proc.pid)
        peak_pss = max(peak_pss, sum(_kb(f"/proc/{p}/smaps_rollup", "Pss:") for p in tree))
        peak_data = max(peak_data, *(_kb(f"/proc/{p}/status", "VmData:") for p in tree))
        if time.perf_counter() - t0 > timeout:  # stuck: stop it and its readers
            hung = True
            for p in reversed(tree):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(p, signal.SIGKILL)
        time.sleep(POLL_S)
    _, status, rusage = os.wait4(proc.pid, 0)  # its usage includes the readers it collected
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - t0
    for t in readers:
        t.join()
    result: dict[str, Any] = {
        "rc": proc.returncode,
        "wall": wall,
        "cpu": rusage.ru_utime + rusage.ru_stime,
        "hung": hung,
        "pss_mb": peak_pss / 1024,
        "rss_mb": rusage.ru_maxrss / 1024,  # kB on Linux
        "data_mb": peak_data / 1024,
    }
    events = [json.loads(line) for line in out["stdout"].splitlines() if line.startswith("{")]
    start = next((e for e in events if e.get("event") == "start"), None)
    summary = next((e for e in events if "event" not in e), None)
    if start:
        result["path"] = "streamed" if start["streamed"] else "in memory"
        result["workers"] = start["workers"]
    if summary:
        result["status"] = summary["status"]
        result["sps"] = summary["samples_per_s"]
    errors = [ln for ln in out["stderr"].splitlines() if ln.startswith("error:")]
    result["error"] = errors[-1].removeprefix("error: ") if errors else ""
    print(f"    {result}", file=sys.stderr)
    return result


# -- the report -------------------------------------------------------------------------------


def data_path(r: dict[str, Any]) -> str:
    """How the run read its data, from its start event."""
    if "path" not in r:
        return "–"
    if r["path"] != "streamed":
        return r["path"]
    return f"streamed, {r['workers']} reader process{'es' if r['workers'] != 1 else ''}"


def fmt_run(r: dict[str, Any]) -> str:
    """Data path, outcome, samples/s, peak memory, CPU and wall seconds: table cells."""
    if r["hung"]:
        outcome = f"**no progress: killed after {r['wall']:.0f} s**"
    elif r["rc"] == 0:
        outcome = r.get("status", "?")
    else:
        outcome = f"exit {r['rc']}: “{r['error'] or '?'}”"
    sps = f"{r['sps']:,.0f}" if r.get("sps") else "–"
    return (
        f"{data_path(r)} | {outcome} | {sps} | {r['rss_mb']:,.0f} | {r['pss_mb']:,.0f} | "
        f"{r['data_mb']:,.0f} | {r['cpu']:.0f} | {r['wall']:.0f}"
    )


def main() -> int:
    ap = parser(__doc__)
    ap.add_argument("--n", type=int, default=60_000, help="images in the folder")
    ap.add_argument("--subset", type=int, default=8_000, help="images in the subset that fits")
    ap.add_argument("--limit-mb", type=int, default=2048, help="memory cap of each run")
    ap.add_argument("--folder", type=Path, help="where the images are (default: a temp folder)")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds on the subset")
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--threads", type=int, default=1, help="torch threads in each run")
    ap.add_argument("--rlimit", choices=sorted(RLIMITS), default="data", help="which cap")
    args = parse(ap)
    t_start = time.perf_counter()
    limit = args.limit_mb
    folder, wrote = image_folder(args.folder or cache_dir("stream") / f"png64-{args.n}", args.n)
    small = subset_folder(folder, args.subset)
    config = {"batch_size": args.batch_size, "threads": args.threads, "rlimit": args.rlimit}
    f32_mb = args.n * 3 * SIZE * SIZE * 4 / MB
    print(f"folder {folder} ({wrote:.0f} s to write); full runs...", file=sys.stderr)

    full = {
        "`off`": run_train(folder, "off", limit, config),
        "`off`, AELAB_MAX_DATA_MB lifted": run_train(
            folder, "off", limit, {**config, "guard_mb": 10**6}
        ),
        "`auto`": run_train(folder, "auto", limit, config),
    }
    print("subset rounds...", file=sys.stderr)
    sub_runs: dict[str, list[dict]] = {"memory": [], "stream": [], "stream0": []}
    modes = {
        "memory": ("off", config),
        "stream": ("on", config),
        "stream0": ("on", {**config, "workers": 0}),
    }

    def one(key: str):
        def run(r: int) -> float:
            res = run_train(small, modes[key][0], limit, modes[key][1])
            assert res["rc"] == 0 and res.get("status") == "completed", res
            sub_runs[key].append(res)
            return res["sps"]

        return run

    rates = interleave({k: one(k) for k in modes}, args.rounds)
    elapsed = time.perf_counter() - t_start

    def med(key: str, field: str) -> float:
        return statistics.median(r[field] for r in sub_runs[key])

    sub_f32 = args.subset * 3 * SIZE * SIZE * 4 / MB
    lines = [
        *head(
            "Streaming vs in-memory training on an image folder",
            " ".join([COMMAND, *sys.argv[1:]]),
            elapsed,
            f"{args.threads} thread(s) in each training process",
        ),
        f"Data: {args.n:,} synthetic {SIZE}×{SIZE} RGB PNGs in {len(CLASSES)} class sub-folders "
        f"({', '.join(CLASSES)}: a coloured shape or sine stripes on a two-colour gradient, "
        f"with mild noise), {disk_mb(folder):,.0f} MB on disk and {f32_mb:,.0f} MB as the "
        f"float32 array aelab holds in memory ({f32_mb / limit:.1f}× the cap); written once to "
        f"a temporary folder. The subset is hard links to its first {args.subset:,} images "
        f"({sub_f32:,.0f} MB as float32).",
        "",
        f"Each row is `aelab train autoencoder --data FOLDER --stream MODE --epochs 1 "
        f"--batch-size {args.batch_size} --json` (default parameters: 12288-128-128-8, Adam 1e-3, "
        f"80/20 split) in a fresh process capped with `{RLIMIT_NAMES[args.rlimit]}` = "
        f"{limit:,} MB and `AELAB_MAX_DATA_MB={limit}`, `OMP_NUM_THREADS={args.threads}`. The "
        "cap is set in the child before it starts, so its reader processes inherit it (each "
        "process has its own). `RLIMIT_DATA` counts a process's heap and private writable "
        "mappings (*VmData*), where numpy and torch allocate; `RLIMIT_AS` would count address "
        "space too, of which a torch process maps far more than it uses (650 MB against 235 MB "
        "resident once aelab is imported; under a 1 GB `RLIMIT_AS` even a 2,000-image run "
        "fails to allocate). *Data path* is what the run's start event reports; samples/s is "
        "the "
        "trainer's (training steps only). *RSS*: `ru_maxrss` from `os.wait4`, the largest "
        "single process (the trainer or a reader). *PSS*: the largest sum over the trainer and "
        f"its readers of their proportional set size, polled every {POLL_S} s (shared pages "
        "counted once). *VmData*: the largest VmData of one process, polled: what the cap "
        "counts. *CPU*: user + system seconds of the trainer and its readers. *Wall*: the whole "
        "process: start-up, reading (for the in-memory path, every image before the first "
        "step), training, validation.",
        "",
        f"### The whole folder ({args.n:,} images) under a {limit:,} MB cap",
        "",
        "| `--stream` | data path | outcome | samples/s | peak RSS MB | peak PSS MB | peak VmData "
        "MB | CPU s | wall s |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for key, r in full.items():
        lines.append(f"| {key} | {fmt_run(r)} |")
    ratio = pair_ratios(rates["stream"], rates["memory"])
    ratio0 = pair_ratios(rates["stream0"], rates["memory"])
    lines += [
        "",
        f"### A subset that fits ({args.subset:,} images), median of {args.rounds} interleaved "
        "rounds",
        "",
        "*Streamed / in memory* is the median over rounds of the ratio of samples/s (lowest "
        "and highest round in brackets).",
        "",
        "| `--stream` | data path | samples/s | streamed / in memory | peak RSS MB | peak PSS "
        "MB | peak VmData MB | CPU s | wall s |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    names = {"memory": "`off`", "stream": "`on`", "stream0": "`on --workers 0`"}
    for key, label in names.items():
        q = {"memory": None, "stream": ratio, "stream0": ratio0}[key]
        rel = "–" if q is None else f"{q['median']:.2f} ({q['min']:.2f}–{q['max']:.2f})"
        lines.append(
            f"| {label} | {data_path(sub_runs[key][0])} | {statistics.median(rates[key]):,.0f} "
            f"| {rel} | {med(key, 'rss_mb'):,.0f} | {med(key, 'pss_mb'):,.0f} | "
            f"{med(key, 'data_mb'):,.0f} | {med(key, 'cpu'):.0f} | {med(key, 'wall'):.0f} |"
        )
    auto = full["`auto`"]
    refused = full["`off`"]["rc"] != 0
    trained = (
        auto["rc"] == 0
        and auto.get("path") == "streamed"
        and auto.get("status") == "completed"
        and auto["pss_mb"] < limit
    )
    extra = med("memory", "pss_mb") - med("stream", "pss_mb")
    per_mb = extra / sub_f32
    need = med("stream", "pss_mb") + per_mb * f32_mb
    lines += [
        "",
        f"Holding the subset in memory took {extra:,.0f} MB more than streaming it, "
        f"{per_mb:.1f} MB per MB of its float32 array; at that rate the whole folder would need "
        f"about {need:,.0f} MB in memory, {need / limit:.1f}× the cap.",
        "",
        f"Whole folder: the in-memory path {'was refused' if refused else '**was not refused**'}"
        f"; streaming {'trained' if trained else '**did not train**'}, peak memory "
        f"{auto['pss_mb']:,.0f} MB PSS ({auto['pss_mb'] / limit:.0%} of the cap), VmData "
        f"{auto['data_mb']:,.0f} MB. Subset: streaming ran at {ratio['median']:.2f}× the "
        f"in-memory samples/s ({ratio0['median']:.2f}× reading in the training process) with "
        f"{med('stream', 'pss_mb') / med('memory', 'pss_mb'):.2f}× its peak memory (PSS).",
        "",
    ]
    publish("\n".join(lines), results_file("stream.md"), write=not args.no_write)
    return 0 if refused and trained else 1


if __name__ == "__main__":
    sys.exit(main())
