"""The ``aelab`` command: every capability of the lab, without the UI."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from . import __version__
from .errors import AelabError


def _print_json(obj: Any) -> None:
    print(json.dumps(obj, indent=2, default=str))


def _fmt_losses(losses: dict[str, float]) -> str:
    return "  ".join(f"{k} {v:.5g}" for k, v in losses.items())


# -- commands ------------------------------------------------------------------------------
def cmd_plugins(args: argparse.Namespace) -> int:
    from .plugins import plugin_info

    _print_json(plugin_info())
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    from .plugins import get_models

    models = get_models()
    if args.json:
        _print_json([spec.to_json() for spec in models.values()])
        return 0
    width = max((len(m) for m in models), default=10)
    for spec in models.values():
        print(f"{spec.id:<{width}}  {spec.name} [{', '.join(spec.accepts)}]")
        print(f"{'':<{width}}  {spec.description}")
    return 0


def cmd_applications(args: argparse.Namespace) -> int:
    from .plugins import get_applications

    apps = get_applications()
    if args.json:
        _print_json([spec.to_json() for spec in apps.values()])
        return 0
    if not apps:
        print("No applications are registered.")
    width = max((len(a) for a in apps), default=10)
    for spec in apps.values():
        print(f"{spec.id:<{width}}  {spec.name} (needs: {', '.join(sorted(spec.needs)) or '-'})")
        print(f"{'':<{width}}  {spec.description}")
    return 0


def cmd_datasets(args: argparse.Namespace) -> int:
    from .data import FORMATS
    from .plugins import get_datasets

    entries = get_datasets()
    if args.json:
        _print_json(
            {
                "builtin": [
                    {"name": e.name, "description": e.description, "plugin": e.plugin}
                    for e in entries.values()
                ],
                "formats": list(FORMATS),
            }
        )
        return 0
    print("Built-in datasets (no download):")
    width = max((len(n) for n in entries), default=8)
    for e in entries.values():
        print(f"  {e.name:<{width}}  {e.description}")
    print("\nData files accepted by --data PATH:")
    for f in FORMATS:
        print(f"  {f}")
    return 0


def _parse_options(spec: Any, pairs: list[list[str]]) -> dict[str, Any]:
    from .params import coerce_option

    return {key: coerce_option(spec.params, key, value) for key, value in pairs or []}


def cmd_train(args: argparse.Namespace) -> int:
    from .callbacks import ConsoleProgress, JsonLines
    from .data import keep_labels, load_data
    from .plugins import get_model, get_models
    from .runs import load_run
    from .train import Trainer

    resume = None
    if not args.model and len(args.keep_labels or []) > 1 and args.keep_labels[-1] in get_models():
        args.model = args.keep_labels.pop()  # `--keep-labels 3 vae`: the list took the model id
    if args.resume:
        resume = load_run(args.resume)
        spec = resume.spec
        if args.model and args.model != spec.id:
            raise AelabError(f"Run '{resume.run_id}' is a '{spec.id}' model, not '{args.model}'.")
        data_name = args.data or resume.data_meta.get("source", "").removeprefix("builtin:")
        if not data_name:
            raise AelabError("Pass --data: the run does not record where its data came from.")
    else:
        if not args.model:
            raise AelabError(
                "Name a model to train (`aelab models` lists them) or pass --resume RUN."
            )
        spec = get_model(args.model)
        data_name = args.data
    params = spec.validate_params(
        {**(resume.params.model_dump() if resume else {}), **_parse_options(spec, args.option)}
    )
    if resume is not None:
        resume.params = params
    config = dict(resume.config.model_dump()) if resume else {}
    for key in ("epochs", "batch_size", "lr", "optimizer", "seed", "device", "val_fraction"):
        value = getattr(args, key)
        if value is not None:
            config[key] = value
    data = load_data(data_name, image_size=args.image_size)
    # The one-class protocol: only the chosen classes (a resumed run keeps the ones it had).
    keep = args.keep_labels or (resume.data_meta.get("kept_labels") if resume else None)
    if keep:
        data = keep_labels(data, keep)
    trainer = Trainer(spec, params, data, config, resume=resume)
    trainer.prepare()
    if not trainer.strategy.is_main:  # under torchrun, rank 0 alone prints and saves
        trainer.fit()
        return 0
    trainer.callbacks.append(JsonLines() if args.json else ConsoleProgress(data_name=data.name))
    done = trainer.fit()
    if args.json:
        print(
            json.dumps(
                {
                    "run": done.run_id,
                    "run_dir": done.run_dir,
                    "status": done.status,
                    "losses": done.losses,
                    "val_losses": done.val_losses,
                    "metrics": done.metrics,
                    "val_metrics": done.val_metrics,
                    "samples_per_s": done.samples_per_s,
                    "message": done.message,
                    "diverged_at": done.diverged_at,
                }
            )
        )
    else:
        print(f"Final losses: {_fmt_losses(done.losses) or 'none'}")
        if done.val_losses:
            print(f"Validation:   {_fmt_losses(done.val_losses)}")
        metrics = {**done.metrics, **{f"val {k}": v for k, v in done.val_metrics.items()}}
        if metrics:
            print(f"Metrics:      {_fmt_losses(metrics)}")
        print(f"Run saved in {done.run_dir}")
    if done.status == "diverged":
        print(f"error: {done.message}", file=sys.stderr)
        return 1
    return 0


def cmd_runs(args: argparse.Namespace) -> int:
    from .runs import list_runs, runs_root

    rows = list_runs()
    if args.json:
        _print_json(rows)
        return 0
    if not rows:
        print(f"No saved runs in {runs_root()}.")
        return 0
    for r in rows:
        val = r["val_losses"].get("total")
        val_txt = f"val {val:.5g}" if val is not None else ""
        print(
            f"{r['run_id']:<45} {r['model'] or '?':<16} {r['data'] or '?':<12} "
            f"{r['epochs']:>4} epochs  {r['status'] or '':<9} {val_txt}"
        )
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    import torch

    from .data import load_data
    from .runs import load_run
    from .train import batch_tensors, evaluate_batches

    run = load_run(args.run)
    data_name = args.data or run.data_meta.get("source", "").removeprefix("builtin:")
    data = load_data(data_name, image_size=args.image_size)
    if args.split == "val" and run.config.val_fraction > 0:
        _, data = data.split(run.config.val_fraction, run.config.seed)
    tensors = batch_tensors(data, run.model.batch_fields, torch.device("cpu"), run.spec.id)
    losses, metrics = evaluate_batches(run.model, tensors)
    if args.json:
        _print_json(
            {
                "run": run.run_id,
                "data": data.name,
                "n": len(data),
                "losses": losses,
                "metrics": metrics,
            }
        )
    else:
        print(f"{run.run_id} on {data.name} ({len(data)} samples): {_fmt_losses(losses)}")
        if metrics:
            print(f"Metrics: {_fmt_losses(metrics)}")
    return 0


# -- parser --------------------------------------------------------------------------------
def build_parser(applications: bool = False) -> argparse.ArgumentParser:
    """The ``aelab`` parser; with ``applications`` also each registered application's command."""
    p = argparse.ArgumentParser(prog="aelab", description="A local lab for the autoencoder family.")
    p.add_argument("--version", action="version", version=f"aelab {__version__}")
    p.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    p.add_argument("--plugins-dir", help="also load loose *.py plugins from this folder")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    s = sub.add_parser("plugins", help="list loaded plugins as JSON")
    s.set_defaults(func=cmd_plugins)

    s = sub.add_parser("models", help="list registered models")
    s.add_argument("--json", action="store_true", help="print a JSON list with each model's schema")
    s.set_defaults(func=cmd_models)

    s = sub.add_parser("datasets", help="list built-in datasets and accepted file formats")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_datasets)

    s = sub.add_parser("train", help="train a model")
    s.add_argument("model", nargs="?", help="model id (see `aelab models`)")
    s.add_argument(
        "--data", help="built-in dataset name or path to a data file/folder (default digits)"
    )
    s.add_argument(
        "-o",
        "--option",
        nargs=2,
        action="append",
        metavar=("KEY", "VALUE"),
        help="a model hyperparameter, e.g. -o code_size 16 -o nodes '[256,64]'",
    )
    s.add_argument("--epochs", type=int)
    s.add_argument("--batch-size", dest="batch_size", type=int)
    s.add_argument("--lr", type=float)
    s.add_argument("--optimizer")
    s.add_argument("--seed", type=int)
    s.add_argument("--device", help="auto, cpu, cuda or mps")
    s.add_argument(
        "--val-fraction",
        dest="val_fraction",
        type=float,
        help="share of the data held out for validation (default 0.2; 0 trains on everything)",
    )
    s.add_argument("--image-size", type=int, help="resize images from a folder to this size")
    s.add_argument("--resume", metavar="RUN", help="continue training a saved run")
    s.add_argument(
        "--keep-labels",
        dest="keep_labels",
        nargs="+",
        metavar="LABEL",
        help="train on these classes only (label values or class names): the one-class "
        "protocol of `aelab anomaly`, which takes them as the normal classes",
    )
    s.add_argument("--json", action="store_true", help="print one JSON object per event")
    s.set_defaults(func=cmd_train)

    s = sub.add_parser("runs", help="list saved runs")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_runs)

    s = sub.add_parser("eval", help="evaluate a saved run")
    s.add_argument("run")
    s.add_argument("--data", help="data to evaluate on (default: the run's own data)")
    s.add_argument(
        "--split",
        choices=["all", "val"],
        default="val",
        help="val: the run's own validation split (default); all: every sample",
    )
    s.add_argument("--image-size", type=int)
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_eval)

    s = sub.add_parser("applications", help="list what trained models can be used for")
    s.add_argument("--json", action="store_true", help="print a JSON list with each one's schema")
    s.set_defaults(func=cmd_applications)

    for register in _extra_commands():
        register(sub)
    if applications:
        from .plugins import get_applications

        for spec in get_applications().values():
            if spec.cli is not None:
                spec.cli(sub)
    return p


def _extra_commands() -> list[Any]:
    """Commands that live in other modules (export, infer, ui), registered if present."""
    out = []
    for modname in ("aelab.cli_export", "aelab.cli_ui"):
        try:
            module = __import__(modname, fromlist=["register"])
        except ModuleNotFoundError:
            continue
        out.append(module.register)
    return out


def _command_word(argv: list[str]) -> str | None:
    """The command the user typed: the first word that is neither an option nor its value."""
    skip = False
    for token in argv:
        if skip:
            skip = False
        elif token == "--plugins-dir":
            skip = True
        elif not token.startswith("-"):
            return token
    return None


def main(argv: list[str] | None = None) -> int:
    """Entry point: run one command; errors become one line on stderr and a non-zero exit."""
    argv = list(sys.argv[1:] if argv is None else argv)
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--plugins-dir")
    known, _ = pre.parse_known_args(argv)
    debug = "--debug" in argv or bool(os.environ.get("AELAB_DEBUG"))
    from .plugins import report_load_warnings, set_plugins_dir

    if known.plugins_dir:
        set_plugins_dir(known.plugins_dir)
    # Every command that loads plugins names those that failed or were refused, one line each.
    stop_reporting = report_load_warnings(lambda line: print(f"warning: {line}", file=sys.stderr))
    try:
        # Applications add commands of their own; plugins are loaded for them (and for --help)
        # only, so `aelab runs` stays as quick as it was.
        word = _command_word(argv)
        from .applications import RESERVED_IDS  # aelab's own commands

        parser = build_parser(applications=word is None or word not in RESERVED_IDS)
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help()
            return 2
        if args.command == "train" and not args.data and not args.resume:
            args.data = "digits"
        return args.func(args)
    except AelabError as exc:
        if debug:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("error: interrupted.", file=sys.stderr)
        return 130
    except Exception as exc:  # an unexpected failure still gets one line, not a traceback
        if debug:
            raise
        print(f"error: {type(exc).__name__}: {exc} (run with --debug for details)", file=sys.stderr)
        return 1
    finally:
        stop_reporting()


if __name__ == "__main__":
    sys.exit(main())
