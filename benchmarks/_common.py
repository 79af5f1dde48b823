"""What the application benchmarks share: their flags, the head of a results file (title,
command, machine line) and writing it to ``benchmarks/results/``. The scripts run as
``python benchmarks/bench_x.py``, so this folder is first on ``sys.path`` and they import it as
``_common``."""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
from collections.abc import Callable
from pathlib import Path

import torch

RESULTS = Path(__file__).resolve().parent / "results"


def results_file(name: str) -> Path:
    """``benchmarks/results/<name>``."""
    return RESULTS / name


def parser(doc: str | None, seeds: str | None = None) -> argparse.ArgumentParser:
    """A parser described by the first line of the script's docstring; with ``seeds`` (its
    help) it takes ``--seeds N`` (default 3)."""
    cli = argparse.ArgumentParser(description=doc.splitlines()[0] if doc else None)
    if seeds is not None:
        cli.add_argument("--seeds", type=int, default=3, help=seeds)
    return cli


def parse(cli: argparse.ArgumentParser) -> argparse.Namespace:
    """Add ``--no-write``, parse the command line, and run torch on one thread."""
    cli.add_argument("--no-write", action="store_true", help="print only")
    args = cli.parse_args()
    torch.set_num_threads(1)  # small models on a shared CPU: one thread is fastest
    return args


def machine(elapsed: float, threads: str = "1 thread") -> str:
    """The machine line: processor, cores, torch version, its threads, and how long the run
    took."""
    return (
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPU core(s), "
        f"torch {torch.__version__} on {threads}; {elapsed:.0f} s."
    )


def results_head(title: str, command: str, elapsed: float, threads: str = "1 thread") -> list[str]:
    """The first lines of a results file: the title, the command that made it, the machine."""
    return [f"# {title}", "", f"Command: `{command}`", "", machine(elapsed, threads), ""]


def cache_dir(name: str) -> Path:
    """A folder under the system's temporary folder for data a benchmark writes once and reuses
    (``<tmp>/aelab-bench/<name>``), created if missing."""
    folder = Path(tempfile.gettempdir()) / "aelab-bench" / name
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def interleave(runs: dict[str, Callable[[int], float]], repeats: int) -> dict[str, list[float]]:
    """Call every run once per round, ``repeats`` rounds, rotating which goes first, so load
    from other processes falls on all sides alike; each run takes the round number and returns
    its measurement. The measurements by run, in round order."""
    names = list(runs)
    out: dict[str, list[float]] = {k: [] for k in names}
    for r in range(repeats):
        shift = r % len(names)
        for k in names[shift:] + names[:shift]:
            out[k].append(runs[k](r))
    return out


def pair_ratios(numerators: list[float], denominators: list[float]) -> dict[str, float]:
    """The median, lowest and highest of the round-by-round ratios ``numerators[i] /
    denominators[i]`` (for speed, the reference's time over the other side's)."""
    ratios = [a / b for a, b in zip(numerators, denominators)]
    return {"median": statistics.median(ratios), "min": min(ratios), "max": max(ratios)}


def publish(text: str, out: Path, write: bool = True) -> None:
    """Print the results and, unless ``write`` is off, write them to ``out``."""
    print(text)
    if write:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
