"""What the application benchmarks share: their flags, the head of a results file (title,
command, machine line) and writing it to ``benchmarks/results/``. The scripts run as
``python benchmarks/bench_x.py``, so this folder is first on ``sys.path`` and they import it as
``_common``."""

from __future__ import annotations

import argparse
import os
import platform
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


def machine(elapsed: float) -> str:
    """The machine line: processor, cores, torch version, and how long the run took."""
    return (
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPU core(s), "
        f"torch {torch.__version__} on 1 thread; {elapsed:.0f} s."
    )


def results_head(title: str, command: str, elapsed: float) -> list[str]:
    """The first lines of a results file: the title, the command that made it, the machine."""
    return [f"# {title}", "", f"Command: `{command}`", "", machine(elapsed), ""]


def publish(text: str, out: Path, write: bool = True) -> None:
    """Print the results and, unless ``write`` is off, write them to ``out``."""
    print(text)
    if write:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
