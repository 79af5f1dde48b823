"""Convolutional models at the speed of the machine: aelab vs a bare loop of the identical network.

Usage: python benchmarks/bench_conv.py [--repeats 3] [--models conv,dcgan] [--sizes 28,64]
       [--threads 2] [--variants "aelab (defaults),aelab + compile"]

The conv autoencoder and the DCGAN train on synthetic images (the built-in digits upscaled to
28×28 grey, and tinted to 64×64 RGB) in a fresh process per run, interleaved, and each run
reports its second epoch (steady speed: the first pays for allocation and page faults), its
minor page faults in that epoch and its peak memory. The bare loop builds the same network
through aelab's builder (same layers, initial weights, optimizer and loss formula) and trains it
by hand: plain (contiguous weights, glibc's default allocator, the GAN's generator run twice per
batch as aelab did), then with each trick alone; aelab runs with its defaults (all tricks on).
``--variants`` picks the runs (the first is the baseline of the × column); "aelab + compile"
(``--compile``, its compile time inside the first epoch) is left out by default.
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from _common import cache_dir, parser, results_file, results_head

VARIANTS = {
    "bare plain": {},
    "bare + allocator": {"malloc": True},
    "bare + channels-last": {"channels_last": True},
    "bare + one G pass": {"one_pass": True},
    "bare + all three": {"malloc": True, "channels_last": True, "one_pass": True},
    "aelab (defaults)": {"aelab": True},
    "aelab + compile": {"aelab": True, "compile": True},
}
DEFAULT_VARIANTS = [v for v in VARIANTS if v != "aelab + compile"]  # compiling takes minutes
SAMPLES = {28: 4096, 64: 1024}
BATCH = 64
EPOCHS = 2


def make_data(size: int) -> Path:
    """The digits upscaled to ``size``×``size``: grey at 28, tinted RGB at 64 (an .npy, cached)."""
    path = cache_dir("conv") / f"images-{size}.npy"
    if path.exists():
        return path
    import torch
    import torch.nn.functional as F

    from aelab.data import load_data

    x = torch.as_tensor(load_data("digits").x)
    n = SAMPLES[size]
    x = x[torch.arange(n) % len(x)]
    x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    if size == 64:
        tint = torch.rand(n, 3, 1, 1, generator=torch.Generator().manual_seed(0))
        x = x * (0.5 + 0.5 * tint)
    np.save(path, (x.clamp(0, 1) * 255).round().to(torch.uint8).numpy())
    return path


def child(model_id: str, size: int, variant: str) -> dict:
    """One run in this (fresh) process: the second epoch's samples/s, faults, peak memory."""
    import torch

    torch.set_num_threads(int(os.environ.get("BENCH_THREADS", "2")))
    flags = VARIANTS[variant]
    from aelab.data import load_data

    data = load_data(make_data(size))
    if flags.get("aelab"):
        return aelab_run(model_id, data, compile=bool(flags.get("compile")))
    return bare_run(model_id, data, flags)


def _faults() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def aelab_run(model_id: str, data, compile: bool = False) -> dict:
    from aelab.plugins import get_model
    from aelab.train import Trainer

    config = {
        "epochs": EPOCHS,
        "batch_size": BATCH,
        "val_fraction": 0.0,
        "device": "cpu",
        "compile": compile,
    }
    marks = []

    from aelab.callbacks import Callback

    class Mark(Callback):
        def on_epoch(self, trainer, event):
            marks.append((time.perf_counter(), _faults()))

    trainer = Trainer(get_model(model_id), {}, data, config, save=False, step_every=0)
    trainer.callbacks.append(Mark())
    trainer.prepare()
    marks.append((time.perf_counter(), _faults()))
    done = trainer.fit()
    (t1, f1), (t2, f2) = marks[1], marks[2]
    return {
        "sps": len(data) / (t2 - t1),
        "faults": f2 - f1,
        "loss": done.losses["total"],
        "format": trainer.memory_format,
    }


def bare_run(model_id: str, data, flags: dict) -> dict:
    import torch

    from aelab.losses import discriminator_loss, generator_loss, reconstruction_loss
    from aelab.models import build_seeded
    from aelab.params import TrainConfig
    from aelab.plugins import get_model

    if flags.get("malloc"):
        from aelab.memory import keep_freed_memory

        keep_freed_memory()
    spec = get_model(model_id)
    model = build_seeded(spec, spec.validate_params({}), data.sample_shape, data.kind, 0).train()
    fmt = torch.channels_last if flags.get("channels_last") else torch.contiguous_format
    model.to(memory_format=fmt)
    opts = model.configure_optimizers(TrainConfig())
    x_all = torch.as_tensor(data.x)
    g = torch.Generator().manual_seed(0)
    gan = model_id == "dcgan"
    times, total = [], 0.0
    for _ in range(EPOCHS):
        start = (time.perf_counter(), _faults())
        perm = torch.randperm(len(x_all), generator=g)
        for i in range(0, len(x_all), BATCH):
            x = x_all[perm[i : i + BATCH]]
            if not gan:
                opt = opts["model"]
                opt.zero_grad(set_to_none=True)
                logits = model.decode_logits(model.encode(x))
                loss = reconstruction_loss(logits, x, model.params.loss, model.output)
                loss.backward()
                opt.step()
                total = float(loss)
                continue
            z = torch.randn(len(x), model.params.code_size, generator=g)
            fake = model._generate(z)
            opts["discriminator"].zero_grad(set_to_none=True)
            d_loss = discriminator_loss(
                model.discriminator(model._to_d(x)),
                model.discriminator(fake.detach()),
                model.params.label_smoothing,
            )
            d_loss.backward()
            opts["discriminator"].step()
            if not flags.get("one_pass"):
                fake = model._generate(torch.randn(len(x), model.params.code_size, generator=g))
            opts["generator"].zero_grad(set_to_none=True)
            g_loss = generator_loss(model.discriminator(fake))
            g_loss.backward()
            opts["generator"].step()
            total = float(d_loss + g_loss)
        times.append((start, (time.perf_counter(), _faults())))
    (t1, f1), (t2, f2) = times[-1]
    return {"sps": len(x_all) / (t2 - t1), "faults": f2 - f1, "loss": total}


def run_fresh(model_id: str, size: int, variant: str) -> dict:
    """A run in a fresh interpreter; its peak memory from the kernel's accounting."""
    flags = VARIANTS[variant]
    # glibc's defaults unless the run keeps freed memory (aelab by default, the bare loop when
    # the variant asks for it: keep_freed_memory() does nothing under AELAB_MALLOC=system).
    keep = flags.get("aelab") or flags.get("malloc")
    env = {**os.environ, "AELAB_MALLOC": "keep" if keep else "system"}
    out = subprocess.run(
        [sys.executable, __file__, "--child", model_id, str(size), variant],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    row = json.loads(out.stdout.strip().splitlines()[-1])
    row["peak_mb"] = row.pop("maxrss_kb", 0) / 1024
    return row


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        model_id, size, variant = sys.argv[2], int(sys.argv[3]), sys.argv[4]
        row = child(model_id, size, variant)
        row["maxrss_kb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print(json.dumps(row))
        return 0
    cli = parser(__doc__)
    cli.add_argument("--repeats", type=int, default=3)
    cli.add_argument("--models", default="conv,dcgan")
    cli.add_argument("--sizes", default="28,64")
    cli.add_argument("--threads", type=int, default=2)
    cli.add_argument(
        "--variants",
        default=",".join(DEFAULT_VARIANTS),
        help=f"comma-separated, among: {', '.join(VARIANTS)} (the first is the baseline)",
    )
    cli.add_argument("--no-write", action="store_true")
    args = cli.parse_args()
    unknown = [v for v in args.variants.split(",") if v.strip() not in VARIANTS]
    if unknown:
        cli.error(f"unknown variant(s) {', '.join(unknown)}; choose among {', '.join(VARIANTS)}")
    os.environ["BENCH_THREADS"] = str(args.threads)
    t0 = time.perf_counter()
    rows = []
    for model_id in args.models.split(","):
        for size in (int(s) for s in args.sizes.split(",")):
            make_data(size)
            names = [v.strip() for v in args.variants.split(",")]
            runs: dict[str, list[dict]] = {v: [] for v in names}
            for r in range(args.repeats):
                for v in names[r % len(names) :] + names[: r % len(names)]:  # rotate the order
                    runs[v].append(run_fresh(model_id, size, v))
            base = runs[names[0]]
            for v, got in runs.items():
                ratio = statistics.median(a["sps"] / b["sps"] for a, b in zip(got, base))
                rows.append(
                    {
                        "model": model_id,
                        "size": size,
                        "variant": v,
                        "sps": statistics.median(g["sps"] for g in got),
                        "ratio": ratio,
                        "faults": statistics.median(g["faults"] for g in got),
                        "peak_mb": statistics.median(g["peak_mb"] for g in got),
                        "loss": statistics.median(g["loss"] for g in got),
                    }
                )
                print(json.dumps(rows[-1]), flush=True)
    lines = results_head(
        "Convolutional models: aelab vs a bare loop of the identical network",
        f"python benchmarks/bench_conv.py --repeats {args.repeats} --threads {args.threads}"
        + ("" if args.models == "conv,dcgan" else f" --models {args.models}")
        + ("" if args.sizes == "28,64" else f" --sizes {args.sizes}")
        + ("" if args.variants == ",".join(DEFAULT_VARIANTS) else f' --variants "{args.variants}"'),
        time.perf_counter() - t0,
        f"{args.threads} threads",
    )
    lines += [
        f"Synthetic images ({SAMPLES[28]} at 28×28 grey, {SAMPLES[64]} at 64×64 RGB), batch "
        f"{BATCH}, second of {EPOCHS} epochs, a fresh process per run, {args.repeats} interleaved "
        f"repeats (medians; × is the median of per-repeat ratios to the {names[0]!r} run).",
        "",
        f"| model | images | run | samples/s | × {names[0]} | page faults / epoch | peak MB |",
        "|---|---|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        size = f"{r['size']}×{r['size']} {'grey' if r['size'] == 28 else 'RGB'}"
        lines.append(
            f"| {r['model']} | {size} | {r['variant']} | {r['sps']:,.0f} | {r['ratio']:.2f} | "
            f"{r['faults']:,.0f} | {r['peak_mb']:,.0f} |"
        )
    text = "\n".join(lines) + "\n"
    print(text)
    if not args.no_write:
        name = "conv.md" if args.variants == ",".join(DEFAULT_VARIANTS) else "conv_variants.md"
        results_file(name).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
