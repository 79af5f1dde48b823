"""Generic trainer vs a hand-written PyTorch loop, and the autoencoder vs PCA on digits.

Run: .venv/bin/python benchmarks/bench_trainer.py [--only digits|mnist]
Both loops train the same architecture on the same data with the same batch size and evaluate
the validation set once per epoch; they run interleaved, several times, and the median of the
per-pair ratios is reported, so load from other processes affects both sides alike.

The digits section (results/trainer.md) times a small model on the built-in digits; the
MNIST-sized section (results/trainer_mnist.md) times 784-512-256-8 on 60,000 synthetic 28x28
images written once to a temporary folder, held in memory and streamed from the .npy file, and
the trainer's bf16, fp16 and compiled steps against its fp32 ones.
"""

from __future__ import annotations

import os
import resource
import statistics
import sys
import tempfile
import time
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from _common import (
    cache_dir,
    interleave,
    pair_ratios,
    parse,
    parser,
    publish,
    results_file,
    results_head,
)
from sklearn.decomposition import PCA
from torch import nn

from aelab.data import load_data
from aelab.events import Start
from aelab.plugins import get_model
from aelab.train import Done, Trainer, train

DIGITS_PARAMS = {"code_size": 8, "layers": 2, "nodes": 128}
MNIST_PARAMS = {"code_size": 8, "layers": 2, "nodes": [512, 256]}
MNIST_BATCH = 256
SEED = 0  # every MNIST-sized run: the same 80/20 split, weights and shuffles
COMMAND = ".venv/bin/python benchmarks/bench_trainer.py"


def bare_model(n_in: int, widths: list[int], code: int) -> nn.Module:
    """The same sandwich as the autoencoder plugin, written by hand."""
    sizes = [n_in, *widths, code]
    enc: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        enc.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            enc.append(nn.ReLU())
    rsizes = sizes[::-1]
    dec: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(rsizes[:-1], rsizes[1:])):
        dec.append(nn.Linear(a, b))
        if i < len(rsizes) - 2:
            dec.append(nn.ReLU())
    return nn.Sequential(nn.Flatten(), *enc, *dec)


def bare_loop(
    x_train: torch.Tensor,
    x_val: torch.Tensor,
    epochs: int,
    bs: int,
    seed: int,
    fused: bool = False,
    widths: tuple[int, ...] = (128, 128),
    code: int = 8,
) -> float:
    """Train with a plain loop (shuffle, step, validate each epoch); returns seconds.

    ``fused``: Adam's fused kernel, as aelab's trainer picks it; the default is what a
    hand-written loop gets from ``torch.optim.Adam(params, lr)``. The clock starts before the
    seeding and the model's construction, as it does around aelab's ``train`` call. The model
    is ``bare_model`` over the samples' values, ``widths`` and ``code``.
    """
    t0 = time.perf_counter()
    torch.manual_seed(seed)
    model = bare_model(x_train[0].numel(), list(widths), code)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, **({"fused": True} if fused else {}))
    gen = torch.Generator().manual_seed(seed)
    n = len(x_train)
    flat_train = x_train
    for _ in range(epochs):
        model.train()
        perm = torch.randperm(n, generator=gen)
        for i in range(0, n, bs):
            batch = flat_train[perm[i : i + bs]]
            opt.zero_grad(set_to_none=True)
            out = torch.sigmoid(model(batch)).reshape(batch.shape)
            loss = F.mse_loss(out, batch)
            loss.backward()
            opt.step()
        model.eval()
        with torch.no_grad():
            float(F.mse_loss(torch.sigmoid(model(x_val)).reshape(x_val.shape), x_val))
    return time.perf_counter() - t0


def aelab_run(
    data, epochs: int, bs: int, seed: int, params: dict = DIGITS_PARAMS, **config: Any
) -> tuple[float, Start]:
    """Train through aelab's generic trainer with its default event stream (``config`` adds
    training settings); returns the seconds and the Start event (how the data was read)."""
    spec = get_model("autoencoder")
    cfg = {"epochs": epochs, "batch_size": bs, "seed": seed, "val_fraction": 0.2, "device": "cpu"}
    start = None
    t0 = time.perf_counter()
    for ev in train(spec, params, data, {**cfg, **config}, save=False):
        if isinstance(ev, Start):
            start = ev
        if isinstance(ev, Done):
            assert ev.status == "completed", ev.message
    assert start is not None
    return time.perf_counter() - t0, start


def aelab_loop(data, epochs: int, bs: int, seed: int) -> float:
    """Train the digits model through aelab's generic trainer; returns seconds."""
    return aelab_run(data, epochs, bs, seed)[0]


def throughput(repeats: int, epochs: int, bs: int) -> dict[str, float]:
    """Median speed ratios of the trainer to two bare loops, over interleaved repeats.

    ``ratio``: against the same loop with the same (fused) Adam, which isolates the trainer's
    own overhead; ``ratio_default``: against a hand-written loop with torch's default Adam.
    """
    data = load_data("digits")
    tr, va = data.split(0.2, 0)
    x_train, x_val = torch.as_tensor(tr.x), torch.as_tensor(va.x)
    n_samples = len(tr) * epochs
    aelab_loop(data, 1, bs, 0)  # warm-up every path
    bare_loop(x_train, x_val, 1, bs, 0)
    bare_loop(x_train, x_val, 1, bs, 0, fused=True)
    runs = {
        "aelab": lambda r: aelab_loop(data, epochs, bs, r),
        "fused": lambda r: bare_loop(x_train, x_val, epochs, bs, r, fused=True),
        "default": lambda r: bare_loop(x_train, x_val, epochs, bs, r),
    }
    times = interleave(runs, repeats)  # rotates who goes first
    # speed ratio = time of the bare loop / time of aelab, pair by pair
    same = [b / a for a, b in zip(times["aelab"], times["fused"])]
    default = [b / a for a, b in zip(times["aelab"], times["default"])]
    return {
        "bare_sps": n_samples / statistics.median(times["default"]),
        "fused_sps": n_samples / statistics.median(times["fused"]),
        "aelab_sps": n_samples / statistics.median(times["aelab"]),
        "ratio": statistics.median(same),
        "ratio_min": min(same),
        "ratio_max": max(same),
        "ratio_default": statistics.median(default),
    }


def ae_vs_pca(code_sizes: list[int], epochs: int) -> list[dict[str, float]]:
    """Test reconstruction MSE of the autoencoder and of PCA at the same code size."""
    data = load_data("digits")
    rest, test = data.split(0.2, 0)  # the test set is never seen in training
    x_rest = rest.x.reshape(len(rest), -1)
    x_test = test.x.reshape(len(test), -1)
    spec = get_model("autoencoder")
    rows = []
    for code in code_sizes:
        pca = PCA(n_components=code, random_state=0).fit(x_rest)
        pca_mse = float(np.mean((pca.inverse_transform(pca.transform(x_test)) - x_test) ** 2))
        params = {"code_size": code, "layers": 1, "nodes": 512}
        cfg = {"epochs": epochs, "batch_size": 32, "lr": 1e-3, "seed": 0, "val_fraction": 0.1}
        done = None
        for ev in train(spec, params, rest, cfg, save=False, step_every=0):
            done = ev
        with torch.no_grad():
            recon = done.model.reconstruct(torch.as_tensor(test.x)).numpy().reshape(len(test), -1)
        ae_mse = float(np.mean((recon - x_test) ** 2))
        rows.append({"code": code, "ae": ae_mse, "pca": pca_mse})
    return rows


# -- MNIST-sized data --------------------------------------------------------------------------

MNIST_DATA = (
    "{n:,} synthetic 28×28 uint8 images in one .npy file ({mb:.0f} MB; {mb32:.0f} MB as float32), "
    "written once to {path}: scikit-learn's 1,797 8×8 digits upscaled bilinearly to 20×20 and "
    "placed at a random offset in a 28×28 frame (as MNIST centres 20×20 digits in 28×28), with "
    "a random stroke gain of 0.7–1.3 and Gaussian noise of σ 0.05, clipped to [0, 1]. The "
    "seeded 80/20 split leaves {n_train:,} training and {n_val:,} validation samples"
)


def mnist_like(n: int = 60_000, seed: int = 0) -> np.ndarray:
    """``n`` MNIST-shaped images (uint8, (n, 28, 28)) made from the built-in digits."""
    rng = np.random.default_rng(seed)
    digits = torch.as_tensor(load_data("digits").x)  # (1797, 1, 8, 8) in [0, 1]
    up = F.interpolate(digits, size=(20, 20), mode="bilinear", align_corners=False)[:, 0].numpy()
    pick = rng.integers(0, len(up), n)
    dy, dx = rng.integers(0, 9, n), rng.integers(0, 9, n)
    gain = rng.uniform(0.7, 1.3, n).astype(np.float32)
    out = np.zeros((n, 28, 28), np.float32)
    for i in range(n):
        out[i, dy[i] : dy[i] + 20, dx[i] : dx[i] + 20] = up[pick[i]] * gain[i]
    out += rng.normal(0.0, 0.05, out.shape).astype(np.float32)
    return (np.clip(out, 0.0, 1.0) * 255).round().astype(np.uint8)


def mnist_file(n: int) -> str:
    """The cached .npy of :func:`mnist_like` (written once, reused while its shape is right)."""
    path = cache_dir("mnist-like") / f"mnist-like-{n}.npy"
    if path.exists():
        try:
            if np.load(path, mmap_mode="r").shape == (n, 28, 28):
                return str(path)
        except (ValueError, OSError):
            pass
    tmp = path.with_name(path.name + ".part")
    with open(tmp, "wb") as f:
        np.save(f, mnist_like(n))
    os.replace(tmp, path)
    return str(path)


def fused_mnist(x_train: torch.Tensor, x_val: torch.Tensor, epochs: int) -> float:
    """The hand-written loop with fused Adam on 784-512-256-8; returns seconds."""
    widths, code = tuple(MNIST_PARAMS["nodes"]), MNIST_PARAMS["code_size"]
    return bare_loop(x_train, x_val, epochs, MNIST_BATCH, SEED, True, widths, code)


def cpu_seconds() -> float:
    """CPU seconds used so far by this process (all its threads) and its finished children (the
    trainer's reader processes, once they have been joined)."""
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + kids.ru_utime + kids.ru_stime


def mnist_throughput(path: str, repeats: int, epochs: int) -> dict[str, Any]:
    """Seconds (wall-clock, and CPU including reader processes) of the fused hand-written loop
    and of aelab's trainer (in memory, and streamed from the .npy with the default readers and
    with none), interleaved; the fused loop's time over each side's, round by round."""
    mem, streamed = load_data(path), load_data(path, stream=True)
    train_set, val_set = mem.split(0.2, SEED)  # the split the trainer makes with seed SEED
    x_train, x_val = torch.as_tensor(train_set.x), torch.as_tensor(val_set.x)
    starts: dict[str, Start] = {}
    cpu: dict[str, list[float]] = {}

    def timed(key: str, fn):
        def run(r: int) -> float:
            c0 = cpu_seconds()
            seconds = fn()
            cpu.setdefault(key, []).append(cpu_seconds() - c0)
            return seconds

        return run

    def aelab(key: str, data, **config: Any):
        def fn() -> float:
            seconds, starts[key] = aelab_run(
                data, epochs, MNIST_BATCH, SEED, MNIST_PARAMS, **config
            )
            return seconds

        return timed(key, fn)

    # Warm every path up (allocator, oneDNN kernels, page cache, worker start) on 5,000 samples.
    small = np.arange(min(5000, len(train_set)))
    fused_mnist(x_train[small], x_val[:1000], 1)
    aelab("warm", mem.subset(small))(0)
    aelab("warm", streamed.subset(small))(0)
    aelab("warm", streamed.subset(small), workers=0)(0)
    runs = {
        "fused": timed("fused", lambda: fused_mnist(x_train, x_val, epochs)),
        "memory": aelab("memory", mem),
        "stream": aelab("stream", streamed),  # workers -1: aelab's automatic choice
        "stream0": aelab("stream0", streamed, workers=0),
    }
    times = interleave(runs, repeats)
    samples = len(train_set) * epochs
    others = [k for k in runs if k != "fused"]
    return {
        "sps": {k: samples / statistics.median(v) for k, v in times.items()},
        "ratio": {k: pair_ratios(times["fused"], times[k]) for k in others},
        "best": {k: min(times["fused"]) / min(times[k]) for k in others},
        "cpu_ratio": {k: pair_ratios(cpu["fused"], cpu[k]) for k in others},
        "path": {k: starts[k].data_path() for k in others},
        "n_train": len(train_set),
        "n_val": len(val_set),
    }


EXTRAS = {  # variant: (training settings, steps timed); fp16 has no fast CPU kernels
    "fp32": ({}, 100),
    "bf16": ({"precision": "bf16"}, 100),
    "fp16": ({"precision": "fp16"}, 12),
    "compile": ({"compile": True}, 100),
}
WARM_STEPS = 3  # compiling happens in the first step (forward and backward graphs)


def trainer_steps(data, config: dict, steps: int) -> tuple[float, float, float]:
    """Drive aelab's Trainer by hand (prepare, then ``step`` on its batches, no validation):
    the seconds of ``prepare`` and the first WARM_STEPS steps (compiling included), the
    samples/s of the next ``steps`` steps, and the last step's loss."""
    cfg = {"epochs": 1, "batch_size": MNIST_BATCH, "seed": SEED, "val_fraction": 0.2}
    trainer = Trainer(get_model("autoencoder"), MNIST_PARAMS, data, {**cfg, **config}, save=False)
    t0 = time.perf_counter()
    trainer.prepare()
    batches = (batch for _ in iter(int, 1) for batch in trainer.batches())  # epoch after epoch
    for _ in range(WARM_STEPS):
        trainer.step(next(batches))
    t1 = time.perf_counter()
    for _ in range(steps):
        row = trainer.step(next(batches))
    t2 = time.perf_counter()
    loss = float(row["total"])
    assert np.isfinite(loss), config
    return t1 - t0, steps * MNIST_BATCH / (t2 - t1), loss


def mnist_extras(path: str, repeats: int) -> dict[str, dict[str, Any]]:
    """Steady training samples/s of aelab's bf16, fp16 and compiled steps against its fp32 ones
    (in memory, interleaved), the time to the end of the first steps (the first round's and the
    median of the others'), and the loss at the last step timed."""
    data = load_data(path)
    first: dict[str, list[float]] = {k: [] for k in EXTRAS}
    losses: dict[str, float] = {}

    def run(key: str):
        def measure(r: int) -> float:
            warm, sps, losses[key] = trainer_steps(data, *EXTRAS[key])
            first[key].append(warm)
            return sps

        return measure

    trainer_steps(data, {}, 5)  # warm-up
    rates = interleave({k: run(k) for k in EXTRAS}, repeats)
    return {
        k: {
            "sps": statistics.median(rates[k]),
            "ratio": pair_ratios(rates[k], rates["fp32"]),
            "first": first[k][0],
            "later": statistics.median(first[k][1:]) if len(first[k]) > 1 else float("nan"),
            "loss": losses[k],
        }
        for k in EXTRAS
    }


def mnist_section(args) -> tuple[str, bool]:
    """The MNIST-sized tables and whether the trainer reached 0.95× the fused loop, in memory
    and streamed with its default readers, at every thread count."""
    t_start = time.perf_counter()
    path = mnist_file(args.mnist_n)
    threads = [int(t) for t in args.threads.split(",")]
    results = {}
    # A fresh inductor cache, so that the first compile is timed cold (later ones hit it).
    with tempfile.TemporaryDirectory(prefix="aelab-bench-inductor-") as inductor_cache:
        before = os.environ.get("TORCHINDUCTOR_CACHE_DIR")
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = inductor_cache
        try:
            for n in threads:
                torch.set_num_threads(n)
                print(f"MNIST-sized data on {n} thread(s)...", file=sys.stderr)
                results[n] = (
                    mnist_throughput(path, args.mnist_repeats, args.mnist_epochs),
                    mnist_extras(path, args.extras_repeats),
                )
        finally:
            if before is None:
                os.environ.pop("TORCHINDUCTOR_CACHE_DIR", None)
            else:
                os.environ["TORCHINDUCTOR_CACHE_DIR"] = before
    torch.set_num_threads(1)
    elapsed = time.perf_counter() - t_start
    some = results[threads[0]][0]
    nbytes = os.path.getsize(path)
    where = path.replace(str(cache_dir("mnist-like")), "<tmp>/aelab-bench/mnist-like")
    data_line = MNIST_DATA.format(
        n=args.mnist_n,
        mb=nbytes / 2**20,
        mb32=args.mnist_n * 784 * 4 / 2**20,
        path=f"`{where}`",
        n_train=some["n_train"],
        n_val=some["n_val"],
    )
    thread_words = " and ".join(str(n) for n in threads)
    lines = [
        *results_head(
            "Trainer throughput on MNIST-sized data",
            " ".join([COMMAND, *sys.argv[1:]]),
            elapsed,
            f"{thread_words} intra-op thread(s), the same on every side",
        ),
        f"Data: {data_line}.",
        "",
        f"Model: aelab's `autoencoder` with nodes [512, 256] and code 8, i.e. 784-512-256-8-256-"
        f"512-784 with ReLU and a sigmoid output, MSE, Adam 1e-3, batch {MNIST_BATCH}, "
        f"{args.mnist_epochs} epoch(s) with a validation pass after each, seed {SEED}.",
        "",
        "The fused loop is a hand-written PyTorch loop over the same architecture with "
        "`Adam(..., fused=True)` (as aelab picks), the training samples as one tensor in memory, "
        "a shuffle per epoch and one validation pass per epoch. Each side runs once per round, "
        f"{args.mnist_repeats} rounds, in rotated order. samples/s = training samples / median "
        "wall-clock seconds of the whole call (model construction, aelab's split and "
        "validation included). *Wall ×* = median over rounds of fused-loop time / aelab time "
        "(lowest and highest round in brackets); *best ×* = the fused loop's fastest round / "
        "aelab's fastest; *CPU ×* = the same median for CPU seconds (the process's threads and "
        "the reader processes it started), which other users' load on this shared machine "
        "disturbs less than wall-clock time. Streamed data is memory-mapped and read a batch at "
        "a time; `workers` -1 lets aelab choose its reader processes, which for a memory map is "
        "none (a batch is a cheap copy out of the page cache), so the -1 and 0 rows run the "
        "same code and differ only by this machine's noise; 0 reads in the training process.",
        "",
    ]
    ok = True
    for n in threads:
        t, x = results[n]
        r = t["ratio"]
        lines += [
            f"### {n} thread(s)",
            "",
            "| loop | data path | samples/s | wall × | best × | CPU × |",
            "|---|---|---:|---:|---:|---:|",
            f"| fused hand-written loop | one tensor in memory | {t['sps']['fused']:,.0f} "
            "| – | – | – |",
        ]
        labels = {
            "memory": "aelab trainer, in memory",
            "stream": "aelab trainer, streamed (`workers` -1)",
            "stream0": "aelab trainer, streamed (`workers` 0)",
        }
        for k, label in labels.items():
            q, c = r[k], t["cpu_ratio"][k]
            lines.append(
                f"| {label} | {t['path'][k]} | {t['sps'][k]:,.0f} | {q['median']:.2f} "
                f"({q['min']:.2f}–{q['max']:.2f}) | {t['best'][k]:.2f} | {c['median']:.2f} "
                f"({c['min']:.2f}–{c['max']:.2f}) |"
            )
        met = r["memory"]["median"] >= 0.95 and r["stream"]["median"] >= 0.95
        ok = ok and met
        lines += [
            "",
            f"Aim (wall × ≥ 0.95 in memory and streamed with the default readers): "
            f"{'met' if met else '**not met**'} on {n} thread(s).",
            "",
            f"Mixed precision and compiling, {n} thread(s): samples/s of aelab's own training "
            f"steps (`Trainer.prepare()`, then `Trainer.step()` on its batches, data in memory, "
            f"no validation) over {EXTRAS['fp32'][1]} steps after {WARM_STEPS} warm-up steps "
            f"({EXTRAS['fp16'][1]} for fp16), median of {args.extras_repeats} interleaved rounds; "
            "× = median over rounds of variant / fp32 (lowest and highest round). *Set-up* is "
            f"`prepare()` plus the first {WARM_STEPS} steps, where `torch.compile` compiles: the "
            "first round's / the later rounds' median. The benchmark gives inductor an empty "
            "cache folder, so the run's first compile is cold; later ones (later rounds, further "
            "thread counts) find the graphs cached. *Loss* is the training loss at the last step "
            "timed (the last round).",
            "",
            "| aelab trainer | steady samples/s | × fp32 | set-up s, first / later | loss |",
            "|---|---:|---:|---:|---:|",
        ]
        names = {
            "fp32": "fp32 (eager)",
            "bf16": '`precision="bf16"` (autocast)',
            "fp16": '`precision="fp16"` (autocast, loss scaling)',
            "compile": "`compile=True` (inductor)",
        }
        for k, label in names.items():
            q, e = x[k]["ratio"], x[k]
            ratio = "–" if k == "fp32" else f"{q['median']:.2f} ({q['min']:.2f}–{q['max']:.2f})"
            step = WARM_STEPS + EXTRAS[k][1]
            lines.append(
                f"| {label} | {e['sps']:,.0f} | {ratio} | {e['first']:.1f} / {e['later']:.1f} "
                f"| {e['loss']:.4f} (step {step}) |"
            )
        lines.append("")
    return "\n".join(lines), ok


# -- the digits section and the command ---------------------------------------------------------


def digits_section(args) -> tuple[str, bool]:
    """The digits tables (trainer vs hand-written loops, autoencoder vs PCA) and whether the
    trainer reached 0.95× the fused loop and the autoencoder beat PCA at every code size."""
    t = throughput(args.repeats, args.epochs, args.batch_size)
    rows = ae_vs_pca([2, 8, 32], args.pca_epochs)
    lines = [
        "### Trainer throughput (digits, autoencoder 64-128-128-8, batch "
        f"{args.batch_size}, {args.epochs} epochs, 1 thread, median of {args.repeats})",
        "",
        "| loop | samples/s | aelab's speed relative to it |",
        "|---|---:|---:|",
        f"| hand-written PyTorch loop, `torch.optim.Adam(params, lr)` | {t['bare_sps']:,.0f} "
        f"| {t['ratio_default']:.2f} |",
        f"| the same loop with `Adam(..., fused=True)`, as aelab picks | {t['fused_sps']:,.0f} "
        f"| {t['ratio']:.2f} (pairs {t['ratio_min']:.2f}–{t['ratio_max']:.2f}) |",
        f"| aelab generic trainer | {t['aelab_sps']:,.0f} | – |",
        "",
        f"### Test reconstruction MSE on digits (held-out 20%, autoencoder 64-512-code, one hidden layer, "
        f"{args.pca_epochs} epochs)",
        "",
        "| code size | autoencoder | PCA | autoencoder / PCA |",
        "|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(f"| {r['code']} | {r['ae']:.5f} | {r['pca']:.5f} | {r['ae'] / r['pca']:.2f} |")
    text = "\n".join(lines) + "\n"
    return text, t["ratio"] >= 0.95 and all(r["ae"] < r["pca"] for r in rows)


def main() -> int:
    ap = parser(__doc__)
    ap.add_argument("--only", choices=["digits", "mnist"], help="run one section alone")
    ap.add_argument("--repeats", type=int, default=9, help="digits: rounds")
    ap.add_argument("--epochs", type=int, default=10, help="digits: epochs per run")
    ap.add_argument("--batch-size", type=int, default=64, help="digits: batch size")
    ap.add_argument("--pca-epochs", type=int, default=150)
    ap.add_argument("--mnist-n", type=int, default=60_000, help="MNIST-sized: samples")
    ap.add_argument("--mnist-repeats", type=int, default=7, help="MNIST-sized: rounds")
    ap.add_argument("--mnist-epochs", type=int, default=1, help="MNIST-sized: epochs per run")
    ap.add_argument("--extras-repeats", type=int, default=3, help="bf16/fp16/compile: rounds")
    ap.add_argument(
        "--threads",
        default="1",
        help="MNIST-sized: torch's intra-op threads, comma-separated, measured in turn "
        "(default 1: a second thread collapses whenever another process takes a core)",
    )
    args = parse(ap)  # one thread: both digits loops single-threaded, comparable when shared

    ok = True
    if args.only in (None, "digits"):
        text, met = digits_section(args)
        publish(text, results_file("trainer.md"), write=not args.no_write)
        ok = ok and met
    if args.only in (None, "mnist"):
        text, met = mnist_section(args)
        publish(text, results_file("trainer_mnist.md"), write=not args.no_write)
        ok = ok and met
    print("targets met" if ok else "TARGETS NOT MET", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
