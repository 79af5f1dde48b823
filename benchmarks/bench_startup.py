"""Start-up time of the lab against a hello-world Gradio app launched the same way.

Usage: python benchmarks/bench_startup.py [--rounds N] [--also DIR] [--no-write]

Every start is a fresh process: a hello-world ``gr.Interface`` launched with the lab's own launch
settings (127.0.0.1, a free port, no browser, blocking), and the lab as ``python -m aelab ui
--port P --no-browser``. Each is timed from just before the process starts until an HTTP GET of
its page answers 200 (polled every 50 ms), then stopped. The sides alternate, round after round,
rotating which goes first, so load from other processes falls on all alike; one untimed round
first warms the file cache and the bytecode. The table has each side's median, lowest and highest
time and the median of the round-by-round ratios lab / hello world (the aim of issue 15: at most
1.2). It also times, to the process's exit, ``python -c pass`` (the interpreter alone), ``python
-c "import gradio"``, ``python -c "import aelab"`` and ``aelab --help``.

``--also DIR`` times the lab from another source tree as a third side (DIR holds ``aelab/`` and
``aelab_plugins/``, put first on PYTHONPATH), e.g. a copy of the code before a change, so that
before and after are measured in the same run.
"""

from __future__ import annotations

import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

from _common import interleave, pair_ratios, parse, parser, publish, results_file, results_head

AIM = 1.2  # issue 15: the lab's start within 1.2x of a hello-world Gradio app's
POLL = 0.05  # seconds between two GETs of a page that is not up yet
TIMEOUT = 180.0  # a start slower than this is a failure, not a measurement

# The hello-world app, launched with the lab's launch settings (see aelab/ui/launcher.py).
HELLO = """\
import os, sys
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
import gradio as gr
demo = gr.Interface(lambda name: "Hello " + name + "!", "text", "text", analytics_enabled=False)
demo.launch(server_name="127.0.0.1", server_port=int(sys.argv[1]), share=False,
            inbrowser=False, show_error=True)
"""


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def clean_env(workdir: Path, pythonpath: str | None = None) -> dict[str, str]:
    """The environment of every timed process: no analytics, runs, exports and bytecode in a
    temporary folder, none of the variables that would choose another port or host."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GRADIO_", "AELAB_"))}
    env.pop("PYTHONPATH", None)
    # Bytecode is cached as in an installed package (pip compiles it at install), even where
    # the shell says PYTHONDONTWRITEBYTECODE: in a folder of the run's own, so the source tree
    # stays clean and the untimed first round warms it for every side alike.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.update(
        GRADIO_ANALYTICS_ENABLED="False",
        AELAB_RUNS_DIR=str(workdir / "runs"),
        AELAB_EXPORTS_DIR=str(workdir / "exports"),
        PYTHONPYCACHEPREFIX=str(workdir / "pycache"),
    )
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    return env


def time_server(argv: Callable[[int], list[str]], env: dict[str, str], cwd: Path) -> float:
    """Seconds from starting ``argv(port)`` until GET / on that port answers 200."""
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    with tempfile.TemporaryFile() as log:
        t0 = time.perf_counter()
        proc = subprocess.Popen(argv(port), env=env, cwd=cwd, stdout=log, stderr=log)
        try:
            while True:
                elapsed = time.perf_counter() - t0
                if proc.poll() is not None:
                    log.seek(0)
                    tail = log.read().decode(errors="replace")[-2000:]
                    raise RuntimeError(f"{argv(port)} exited with {proc.returncode}:\n{tail}")
                if elapsed > TIMEOUT:
                    raise RuntimeError(f"{argv(port)} was not up after {TIMEOUT:.0f} s")
                try:
                    with urllib.request.urlopen(url, timeout=5) as resp:
                        if resp.status == 200:
                            return time.perf_counter() - t0
                except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
                    pass
                time.sleep(POLL)
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def time_command(argv: list[str], env: dict[str, str], cwd: Path) -> float:
    """Seconds from starting ``argv`` until it exits (successfully)."""
    t0 = time.perf_counter()
    subprocess.run(argv, env=env, cwd=cwd, check=True, capture_output=True, timeout=TIMEOUT)
    return time.perf_counter() - t0


def aelab_command() -> list[str]:
    """The ``aelab`` console script next to this interpreter, else ``python -m aelab``."""
    script = Path(sys.executable).with_name("aelab")
    return [str(script)] if script.exists() else [sys.executable, "-m", "aelab"]


def row(name: str, times: list[float]) -> str:
    return f"| {name} | {statistics.median(times):.2f} | {min(times):.2f} | {max(times):.2f} |"


def main() -> int:
    cli = parser(__doc__)
    # 11 rounds: single starts on a shared 2-core machine vary by a third (3.3-5.0 s), and the
    # median of 7 ratios moved by 0.1 between runs.
    cli.add_argument("--rounds", type=int, default=11, help="timed rounds (default 11)")
    cli.add_argument(
        "--also",
        metavar="DIR",
        help="also time the lab from this source tree (DIR/aelab, DIR/aelab_plugins)",
    )
    args = parse(cli)
    started = time.perf_counter()
    py = sys.executable
    work = Path(tempfile.mkdtemp(prefix="aelab-bench-startup-"))
    env = clean_env(work)

    def lab(argv_env: dict[str, str]) -> Callable[[int], float]:
        return lambda _r: time_server(
            lambda p: [py, "-m", "aelab", "ui", "--port", str(p), "--no-browser"], argv_env, work
        )

    servers: dict[str, Callable[[int], float]] = {
        "hello": lambda _r: time_server(lambda p: [py, "-c", HELLO, str(p)], env, work),
        "lab": lab(env),
    }
    if args.also:
        servers["also"] = lab(clean_env(work, str(Path(args.also).resolve())))
    commands: dict[str, Callable[[int], float]] = {
        "pass": lambda _r: time_command([py, "-c", "pass"], env, work),
        "gradio": lambda _r: time_command([py, "-c", "import gradio"], env, work),
        "import": lambda _r: time_command([py, "-c", "import aelab"], env, work),
        "help": lambda _r: time_command([*aelab_command(), "--help"], env, work),
    }
    everything = {**servers, **commands}
    interleave(everything, 1)  # warm-up: file cache and bytecode, not counted
    times = interleave(everything, args.rounds)
    for name, values in times.items():
        print(name, " ".join(f"{v:.2f}" for v in values), file=sys.stderr)

    ratio = pair_ratios(times["lab"], times["hello"])
    verdict = "pass" if ratio["median"] <= AIM else "miss"
    command = "python benchmarks/bench_startup.py" + (
        f" --rounds {args.rounds}" if args.rounds != 11 else ""
    )
    lines = results_head(
        "Lab start-up against a hello-world Gradio app",
        command + (" --also DIR" if args.also else ""),
        time.perf_counter() - started,
        threads="default threads",
    )
    lines += [
        f"Gradio {metadata.version('gradio')}, Python {platform.python_version()}; "
        f"{args.rounds} rounds after one warm-up round, sides alternating. Seconds from starting the process until GET "
        "/ answers 200 (servers) or until it exits (commands).",
        "",
        "| side | median s | lowest s | highest s |",
        "|---|---:|---:|---:|",
        row("hello-world `gr.Interface`, same launch settings", times["hello"]),
        row("lab: `python -m aelab ui --port P --no-browser`", times["lab"]),
    ]
    if args.also:
        lines.append(row("lab from the `--also` tree", times["also"]))
    lines += [
        row('`python -c "pass"` (the interpreter alone)', times["pass"]),
        row('`python -c "import gradio"`', times["gradio"]),
        row('`python -c "import aelab"`', times["import"]),
        row("`aelab --help`", times["help"]),
        "",
        "| ratio, round by round | median | lowest | highest |",
        "|---|---:|---:|---:|",
        f"| **lab / hello world** (aim ≤ {AIM:g}: {verdict}) | **{ratio['median']:.2f}** | "
        f"{ratio['min']:.2f} | {ratio['max']:.2f} |",
    ]
    if args.also:
        other = pair_ratios(times["also"], times["hello"])
        lines.append(
            f"| lab from the other tree / hello world | {other['median']:.2f} | "
            f"{other['min']:.2f} | {other['max']:.2f} |"
        )
    lines += [
        "",
        "Round by round (s): "
        + "; ".join(
            f"{name} " + ", ".join(f"{v:.2f}" for v in values) for name, values in times.items()
        )
        + ".",
        "",
    ]
    publish("\n".join(lines), results_file("startup.md"), write=not args.no_write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
