"""The ``aelab`` command: every capability of the lab, without the UI."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import textwrap
from typing import Any

from . import __version__
from .compare import FIGURE_NAMES, compare_rows, figure_keys
from .compare import figures_text as _figures_text
from .errors import AelabError


def _print_json(obj: Any) -> None:
    """One JSON value on one line, so that output pipes into jq and JSON-lines tools."""
    print(json.dumps(obj, default=str))


def _fmt_losses(losses: dict[str, float]) -> str:
    return "  ".join(f"{k} {v:.5g}" for k, v in losses.items())


class OneLineParser(argparse.ArgumentParser):
    """An argument parser whose errors are one line, like every other error of the command:
    ``error: ...`` on stderr and exit status 2 (``--help`` is unchanged)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        message = " ".join(message.split()).rstrip(".")
        self.exit(2, f"error: {message}; see `{self.prog} --help`.\n")


# -- commands ------------------------------------------------------------------------------
def cmd_plugins(args: argparse.Namespace) -> int:
    from .plugins import plugin_info

    _print_json(plugin_info())
    return 0


# -- schema tables: a model's -o keys and the training settings, from their pydantic schemas ---
_TYPE_NAMES = {"integer": "int", "number": "float", "string": "str", "boolean": "bool"}


def _number(value: Any) -> str:
    return str(value) if isinstance(value, int) else f"{value:g}"


def _schema_type(prop: dict[str, Any]) -> str:
    """A property's type in a few words: int, float, str, int or list of int, ..."""
    if "anyOf" in prop:
        return " or ".join(dict.fromkeys(_schema_type(b) for b in prop["anyOf"]))
    kind = prop.get("type")
    if kind == "array":
        return f"list of {_schema_type(prop.get('items', {}))}"
    if kind == "null":
        return "none"
    return _TYPE_NAMES.get(kind, kind or "any")


def _resolved(prop: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    """A property with its ``$ref`` (an Enum or nested type, kept in ``$defs``) filled in."""
    ref = prop.get("$ref") or next((p.get("$ref") for p in prop.get("allOf", []) if p), None)
    if ref:
        target = defs.get(ref.rsplit("/", 1)[-1], {})
        prop = {**target, **{k: v for k, v in prop.items() if k not in ("$ref", "allOf")}}
    if "anyOf" in prop:
        prop = {**prop, "anyOf": [_resolved(b, defs) for b in prop["anyOf"]]}
    return prop


def _properties(schema: dict[str, Any]) -> dict[str, dict[str, Any]]:
    defs = schema.get("$defs", {})
    return {k: _resolved(p, defs) for k, p in schema.get("properties", {}).items()}


def _schema_allowed(prop: dict[str, Any]) -> str:
    """What values a property takes: an interval for numbers, the choices for a literal."""
    if "enum" in prop:
        return ", ".join(map(str, prop["enum"]))
    if "const" in prop:
        return f"{prop['const']} only"
    for part in (prop, *prop.get("anyOf", [])):
        lo = part.get("minimum", part.get("exclusiveMinimum"))
        hi = part.get("maximum", part.get("exclusiveMaximum"))
        if lo is not None or hi is not None:
            left = "[" if "minimum" in part else "("
            right = "]" if "maximum" in part else ")"
            lo_text = _number(lo) if lo is not None else "-inf"
            hi_text = _number(hi) if hi is not None else "inf"
            return f"{left}{lo_text}, {hi_text}{right}"
    return "-"


def _schema_default(prop: dict[str, Any]) -> str:
    if "default" not in prop:
        return "required"
    value = prop["default"]
    return value if isinstance(value, str) else json.dumps(value)


def _text_width() -> int:
    """Where help text wraps: where argparse wraps it (the terminal's width or $COLUMNS, less 2),
    at most 100 columns."""
    return max(40, min(shutil.get_terminal_size().columns, 102) - 2)


def _wrap(text: str) -> str:
    return "\n".join(textwrap.wrap(text, _text_width(), break_on_hyphens=False))


def options_table(spec: Any) -> str:
    """A model's ``-o`` keys, one row each (type, allowed values, default), with the description
    of each below its row; built from the model's pydantic schema."""
    props = _properties(spec.schema())
    rows = [("KEY", "TYPE", "ALLOWED", "DEFAULT")]
    rows += [(k, _schema_type(p), _schema_allowed(p), _schema_default(p)) for k, p in props.items()]
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    width = _text_width()
    lines = [f"Options of {spec.id} (set each with -o KEY VALUE):"]
    for i, row in enumerate(rows):
        cells = [f"{c:<{w}}" for c, w in zip(row, widths)]
        lines.append(("  " + "  ".join([*cells, row[3]])).rstrip())
        description = props[row[0]].get("description", "") if i else ""
        if description:
            lines += textwrap.wrap(
                description,
                width,
                initial_indent=" " * 6,
                subsequent_indent=" " * 6,
                break_on_hyphens=False,
            )
    key, prop = next(iter(props.items()), ("KEY", {"default": "VALUE"}))
    lines.append(f"\nExample: aelab train {spec.id} -o {key} {_schema_default(prop)}")
    return "\n".join(lines)


TRAIN_EPILOG = (
    "Each model has its own hyperparameters, set with -o KEY VALUE: run `aelab models ID` (or "
    "`aelab train ID --help`) to list a model's keys with their types, bounds, defaults and "
    "descriptions; `aelab models` lists the model ids."
)


LOG_HELP = (
    "log the training to an experiment tracker: {names} (repeat --log, or separate names with "
    "commas); tensorboard writes to the run's folder (tensorboard --logdir runs), mlflow to "
    "MLFLOW_TRACKING_URI or ./mlruns; each needs its extra: pip install 'aelab[tensorboard]'"
)

# What the CLI adds to a training setting's description (the description itself is TrainConfig's).
_SETTING_NOTES = {"val_fraction": "0 trains on everything."}


def _train_settings_help() -> dict[str, str]:
    """Help for each training setting, from TrainConfig's schema: its description, the values it
    takes and its default (one source for the CLI, the lab and validation)."""
    from .params import TrainConfig

    out = {}
    for key, prop in _properties(TrainConfig.model_json_schema()).items():
        about = [prop.get("description", "").strip(), _SETTING_NOTES.get(key)]
        if prop.get("type") == "boolean":  # a switch: the flag turns it on
            takes = f"{'On' if prop.get('default') else 'Off'} by default."
        else:
            allowed = _schema_allowed(prop)
            kind = "One of" if "enum" in prop else "Range"
            takes = f"{kind} {allowed}; default {_schema_default(prop)}."
        text = " ".join([*filter(None, about), takes])
        out[key] = text.replace("%", "%%")  # argparse %-formats help strings
    return out


def cmd_models(args: argparse.Namespace) -> int:
    from .plugins import get_model, get_models

    if args.model:
        spec = get_model(args.model)  # an unknown id: one sentence naming the known ones
        if args.json:
            _print_json(spec.to_json())
            return 0
        print(f"{spec.id}  {spec.name} [{', '.join(spec.accepts)}]")
        print(_wrap(spec.description))
        print()
        print(options_table(spec))
        return 0
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


class _OptionAction(argparse.Action):
    """``-o KEY VALUE`` or ``-o KEY=VALUE``, each use adding one (key, value) pair."""

    def __call__(self, parser: Any, namespace: Any, values: Any, option_string: Any = None):
        if len(values) == 1 and "=" in values[0]:
            pair = values[0].split("=", 1)
        elif len(values) == 2 and "=" not in values[0]:
            pair = list(values)
        else:
            parser.error(
                f"{option_string} takes KEY=VALUE or KEY VALUE (one hyperparameter per "
                f"{option_string}), not {' '.join(values)}"
            )
        items = list(getattr(namespace, self.dest, None) or [])
        items.append(pair)
        setattr(namespace, self.dest, items)


def _parse_options(spec: Any, pairs: list[list[str]]) -> dict[str, Any]:
    from .params import coerce_option

    return {key: coerce_option(spec.params, key, value) for key, value in pairs or []}


def _launch_torchrun(n: int, typed: list[str]) -> int:
    """Run this same ``aelab train`` command again under torchrun in ``n`` processes."""
    import subprocess

    argv, skip = [], False
    for token in typed:  # the command as typed, less --nproc and its value
        if skip:
            skip = False
        elif token == "--nproc":
            skip = True
        elif not token.startswith("--nproc="):
            argv.append(token)
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    command = [*launcher, f"--nproc-per-node={n}", "-m", "aelab", *argv]
    try:
        return subprocess.run(command, check=False).returncode
    except KeyboardInterrupt:
        return 130


def cmd_train(args: argparse.Namespace) -> int:
    if args.nproc is not None:
        if args.nproc < 1:
            raise AelabError(f"--nproc must be a number of processes, 1 or more, not {args.nproc}.")
        if args.nproc > 1 and int(os.environ.get("WORLD_SIZE", 1)) == 1:
            return _launch_torchrun(args.nproc, args.argv)
    from .api import TRAIN_SETTINGS, make_trainer
    from .callbacks import JsonLines, TqdmProgress
    from .plugins import get_model, get_models
    from .series import options_from_args
    from .tracking import make_trackers

    # Before any data is read: an unknown tracker or a missing package fails at once.
    if args.log_dir and not args.log:
        raise AelabError("--log-dir says where TensorBoard writes; add --log tensorboard.")
    trackers = make_trackers(args.log, **({"log_dir": args.log_dir} if args.log_dir else {}))

    if not args.model and len(args.keep_labels or []) > 1 and args.keep_labels[-1] in get_models():
        args.model = args.keep_labels.pop()  # `--keep-labels 3 vae`: the list took the model id
    if not args.model and not args.resume:
        raise AelabError("Name a model to train (`aelab models` lists them) or pass --resume RUN.")
    spec = None if args.resume else get_model(args.model)
    if args.resume:
        from .runs import load_run

        resume = load_run(args.resume)
        spec = resume.spec
    else:
        resume = None
    options = _parse_options(spec, args.option) if spec is not None else {}
    config = {k: getattr(args, k) for k in TRAIN_SETTINGS if getattr(args, k) is not None}
    trainer = make_trainer(
        args.model,
        args.data,
        params=options,
        config=config,
        resume=resume,
        image_size=args.image_size,
        series=options_from_args(args),
        stream={"auto": "auto", "on": True, "off": False}[args.stream],
        keep_labels=args.keep_labels,
    )
    data = trainer.data
    trainer.prepare()
    # About a hundred progress events an epoch: each reads the loss, which waits for a GPU.
    trainer.step_every = max(1, trainer.steps_per_epoch // 100)
    if not trainer.strategy.is_main:  # under torchrun, rank 0 alone prints and saves
        trainer.fit()
        return 0
    progress = TqdmProgress(data_name=data.name, header=True)
    trainer.callbacks.append(JsonLines() if args.json else progress)
    trainer.callbacks.extend(trackers)  # rank 0 alone logs, as it alone saves
    done = trainer.fit()
    warnings = _collapse_warnings(done, data, trainer.config)
    if args.json:
        print(
            json.dumps(
                {
                    "warnings": [{"code": w.code, "message": w.message} for w in warnings],
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
        for w in warnings:
            print(f"warning: {w.message}", file=sys.stderr)
    if done.status in ("diverged", "failed"):
        print(f"error: {done.message}", file=sys.stderr)
        return 1
    return 0


def _collapse_warnings(done: Any, data: Any, config: Any) -> list[Any]:
    """Posterior or mode collapse of a finished training, checked on its held-out data."""
    from .diagnostics import diagnose

    if done.model is None or done.status in ("diverged", "failed"):
        return []
    held_out = data.split(config.val_fraction, config.seed)[1] if config.val_fraction else data
    if getattr(held_out, "streamed", False):  # a sample of it, read into memory
        held_out = held_out.head(2000)
    return diagnose(done.model, held_out)


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
    from .api import load

    result = load(args.run).evaluate(
        args.data,
        args.split,
        nll_samples=args.nll_samples,
        fd_samples=args.fd_samples,
        image_size=args.image_size,
    )
    if args.json:
        _print_json(result)
        return 0
    what = {"val": "its validation split", "all": "all its data", "whole": "the whole file"}
    print(
        f"{result['run']} on {result['data']} ({what[result['split']]}, {result['n']} samples): "
        f"{_fmt_losses(result['losses'])}"
    )
    if result["metrics"]:
        print(f"Metrics: {_fmt_losses(result['metrics'])}")
    for line in _figures_text(result["figures"]):
        print(line)
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    rows = compare_rows(
        args.runs,
        args.data,
        args.split,
        nll_samples=args.nll_samples,
        fd_samples=args.fd_samples,
        image_size=args.image_size,
    )
    if args.json:
        _print_json({"runs": rows})
        return 0
    keys = figure_keys(rows)
    header = ["run", "model", "epochs", "n", "val loss", *(FIGURE_NAMES[k] for k in keys)]
    print("| " + " | ".join([*header, "samples/s"]) + " |")
    print("|" + "---|" * (len(header) + 1))
    for r in rows:
        cells = [r["run"], r["model"], str(r["epochs"]), str(r["n"])]
        cells.append(f"{r['losses'].get('total', float('nan')):.5g}")
        cells += [f"{r['figures'][k]:.5g}" if k in r["figures"] else "–" for k in keys]
        sps = r["samples_per_s"]
        cells.append(f"{sps:,.0f}" if sps else "–")
        print("| " + " | ".join(cells) + " |")
    return 0


def _add_eval_arguments(s: argparse.ArgumentParser) -> None:
    """The options ``aelab eval`` and ``aelab compare`` share."""
    s.add_argument(
        "--data",
        help="data to evaluate on, scored whole (default: the run's own data, split by --split)",
    )
    s.add_argument(
        "--split",
        choices=["all", "val"],
        default=None,
        help="of the run's own data: val, the validation split it held out (default), or all",
    )
    s.add_argument(
        "--nll-samples",
        type=int,
        default=0,
        metavar="K",
        help="estimate a VAE's negative log-likelihood with the importance-weighted bound of K "
        "samples (e.g. 100; default 0: not estimated)",
    )
    s.add_argument(
        "--fd-samples",
        type=int,
        default=1000,
        metavar="N",
        help="generated and real samples for the Fréchet distance of a generative model "
        "(default 1000, at most the data's size; 0 skips it)",
    )
    s.add_argument("--image-size", type=int)
    s.add_argument("--json", action="store_true")


# -- parser --------------------------------------------------------------------------------
def build_parser(applications: bool = False) -> argparse.ArgumentParser:
    """The ``aelab`` parser; with ``applications`` also each registered application's command."""
    p = OneLineParser(prog="aelab", description="A local lab for the autoencoder family.")
    p.add_argument("--version", action="version", version=f"aelab {__version__}")
    p.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    p.add_argument("--plugins-dir", help="also load loose *.py plugins from this folder")
    # Every command's parser (applications' too: they call sub.add_parser) errs in one line.
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=OneLineParser)

    s = sub.add_parser("plugins", help="list loaded plugins as JSON")
    s.set_defaults(func=cmd_plugins)

    s = sub.add_parser("models", help="list registered models, or one model's -o keys")
    s.add_argument(
        "model", nargs="?", help="a model id: list its -o keys (type, bounds, default, meaning)"
    )
    s.add_argument(
        "--json",
        action="store_true",
        help="print a JSON list with each model's schema (with an id: that model's JSON object)",
    )
    s.set_defaults(func=cmd_models)

    s = sub.add_parser("datasets", help="list built-in datasets and accepted file formats")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_datasets)

    settings = _train_settings_help()
    s = sub.add_parser(
        "train",
        help="train a model",
        epilog=_wrap(TRAIN_EPILOG),
        formatter_class=argparse.RawDescriptionHelpFormatter,  # keeps the options table's rows
    )
    s.add_argument("model", nargs="?", help="model id (see `aelab models`)")
    s.add_argument(
        "--data", help="built-in dataset name or path to a data file/folder (default digits)"
    )
    s.add_argument(
        "-o",
        "--option",
        nargs="+",
        action=_OptionAction,
        metavar="KEY[=]VALUE",
        help="a model hyperparameter, e.g. -o code_size=16 or -o code_size 16, -o nodes "
        "'[256,64]'; `aelab models ID` lists a model's keys",
    )
    # No argparse defaults: None means "not given", so a resumed run keeps its own settings.
    s.add_argument("--epochs", type=int, metavar="N", help=settings["epochs"])
    s.add_argument(
        "--batch-size", dest="batch_size", type=int, metavar="N", help=settings["batch_size"]
    )
    s.add_argument("--lr", type=float, metavar="RATE", help=settings["lr"])
    s.add_argument("--optimizer", metavar="NAME", help=settings["optimizer"])
    s.add_argument("--seed", type=int, metavar="N", help=settings["seed"])
    s.add_argument("--device", metavar="NAME", help=settings["device"])
    s.add_argument(
        "--val-fraction",
        dest="val_fraction",
        type=float,
        metavar="F",
        help=settings["val_fraction"],
    )
    s.add_argument(
        "--image-size",
        type=int,
        metavar="PIXELS",
        help="resize images from a folder to this size (default: their own size)",
    )
    s.add_argument(
        "--resume",
        metavar="RUN",
        help="continue training a saved run; settings not given keep the run's values",
    )
    s.add_argument(
        "--keep-labels",
        dest="keep_labels",
        nargs="+",
        metavar="LABEL",
        help="train on these classes only (label values or class names): the one-class "
        "protocol of `aelab anomaly`, which takes them as the normal classes",
    )
    s.add_argument("--json", action="store_true", help="print one JSON object per event")
    s.add_argument(
        "--nproc",
        type=int,
        metavar="N",
        help="train in N processes with DistributedDataParallel on this machine (a shortcut "
        "for `torchrun --standalone --nproc-per-node N -m aelab train ...`; gloo on CPU, nccl "
        "on CUDA); only the first process prints and saves",
    )
    s.add_argument("--precision", metavar="P", help=settings["precision"])
    s.add_argument(
        "--compile", action="store_const", const=True, default=None, help=settings["compile"]
    )
    s.add_argument("--workers", type=int, metavar="N", help=settings["workers"])
    s.add_argument("--threads", type=int, metavar="N", help=settings["threads"])
    s.add_argument(
        "--stream",
        choices=["auto", "on", "off"],
        default="auto",
        help="read the data from disk batch by batch instead of holding it in memory: auto "
        "streams .npy, IDX and image folders larger than AELAB_MAX_DATA_MB (default auto); "
        "the first line says which",
    )
    s.add_argument(
        "--log", action="append", metavar="NAME", help=LOG_HELP.format(names="tensorboard, mlflow")
    )
    s.add_argument(
        "--log-dir",
        dest="log_dir",
        metavar="DIR",
        help="with --log tensorboard: write the event files to DIR/RUN_ID instead of the run's "
        "own folder",
    )
    from .series import add_series_arguments

    add_series_arguments(s)
    s.set_defaults(func=cmd_train)

    s = sub.add_parser("runs", help="list saved runs")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_runs)

    s = sub.add_parser(
        "eval",
        help="evaluate a saved run: losses, MSE, PSNR, SSIM, BCE, a VAE's NLL, a generator's FD",
    )
    s.add_argument("run")
    _add_eval_arguments(s)
    s.set_defaults(func=cmd_eval)

    s = sub.add_parser("compare", help="evaluate several runs on the same data, in one table")
    s.add_argument("runs", nargs="+", metavar="RUN")
    _add_eval_arguments(s)
    s.set_defaults(func=cmd_compare)

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


def _subparser(parser: argparse.ArgumentParser, name: str) -> argparse.ArgumentParser:
    """The parser of one command."""
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return action.choices[name]


def _model_in_train_args(train: argparse.ArgumentParser, args: list[str]) -> str | None:
    """The model id in the words after ``train`` (the first positional, skipping option values),
    so that ``aelab train ID --help`` can show that model's -o keys."""
    from .plugins import get_models

    i = 0
    while i < len(args):
        token = args[i]
        i += 1
        if token == "--":
            return args[i] if i < len(args) else None
        if not token.startswith("-") or token == "-":
            return token
        action = train._option_string_actions.get(token)
        if action is None:  # --opt=value, or a flag this parser does not know
            continue
        if action.nargs in ("+", "*"):
            taken = []
            while i < len(args) and not args[i].startswith("-"):
                taken.append(args[i])
                i += 1
            # `--keep-labels 3 vae`: the list takes the model id too (cmd_train does the same)
            if len(taken) > 1 and taken[-1] in get_models():
                return taken[-1]
        elif isinstance(action.nargs, int):
            i += action.nargs
        elif action.nargs is None:
            i += 1
    return None


def _show_model_options(parser: argparse.ArgumentParser, argv: list[str], word: str) -> None:
    """With ``train ID --help``, end the help with the table of that model's -o keys."""
    from .plugins import get_model

    train = _subparser(parser, "train")
    model = _model_in_train_args(train, argv[argv.index(word) + 1 :])
    if model is not None:
        spec = get_model(model)  # an unknown id: one sentence naming the known ones
        train.epilog = f"{options_table(spec)}\n\n{_wrap(TRAIN_EPILOG)}"


def _show_trackers(parser: argparse.ArgumentParser) -> None:
    """With ``train --help``, name every registered tracker (a plugin's too) in the help of
    --log; otherwise the parser is built without loading plugins."""
    from .tracking import tracker_names

    action = _subparser(parser, "train")._option_string_actions["--log"]
    action.help = LOG_HELP.format(names=", ".join(tracker_names()) or "none")


def _quiet_stdout() -> None:
    """Point stdout at /dev/null, so that the interpreter's last flush at exit finds no closed
    pipe (and prints no 'Exception ignored ... BrokenPipeError')."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):  # no real stdout (e.g. captured): nothing to do
        pass


# 128 + SIGPIPE: what a shell reports for `cat big | head -1` when the reader leaves early.
EXIT_BROKEN_PIPE = 141


def main(argv: list[str] | None = None) -> int:
    """Entry point: run one command; errors become one line on stderr and a non-zero exit.

    When stdout is a pipe whose reader has gone (``aelab models | head -1``), the command stops
    quietly with exit status 141, as a program killed by SIGPIPE would: scripts under
    ``set -o pipefail`` still see that the output was cut short, and nothing is printed.
    """
    try:
        try:
            return _main(argv)
        finally:
            sys.stdout.flush()  # here, not at exit, so that a closed pipe is caught below
    except BrokenPipeError:
        _quiet_stdout()
        return EXIT_BROKEN_PIPE


def _main(argv: list[str] | None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    pre = OneLineParser(prog="aelab", add_help=False)
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
        if word == "train" and ("-h" in argv or "--help" in argv):
            _show_model_options(parser, argv, word)
            _show_trackers(parser)
        args = parser.parse_args(argv)
        args.argv = argv  # as typed, for a command that runs itself again (--nproc)
        if args.command is None:
            parser.print_help()
            return 2
        out = getattr(args, "out", None)
        if isinstance(out, str) and not out.strip():
            raise AelabError(
                f"--out is empty; name the file or folder that `aelab {args.command}` should "
                "write, or leave --out out."
            )
        if args.command == "train" and not args.data and not args.resume:
            args.data = "digits"
        return args.func(args)
    except BrokenPipeError:
        raise  # the reader of stdout has gone: main stops quietly
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
