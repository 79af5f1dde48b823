"""The Runs tab's comparison: the runs a user ticks, scored the same way ``aelab compare`` scores
them (:func:`aelab.compare.compare_rows`), in one table with a note of how each figure was
computed, and their validation loss curves on one chart (the /compare endpoint)."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gradio as gr
import pandas as pd

from ..compare import FIGURE_NAMES, compare_rows, figure_keys, figure_notes
from ..errors import AelabError
from ..plugins import get_datasets
from ..runs import load_run_by_id
from . import curves, training
from .session import sentence
from .uploads import UploadArea, describe_data, restorable

# The "Score on" choice that scores each run on the validation split it held out.
OWN = "each run's own validation split"
TABLE_LABEL = "Runs side by side, each scored the same way (as aelab compare does)"
PLOT_LABEL = "Validation loss of each run, per epoch"
INTRO = (
    "### Compare runs\n"
    "Tick saved runs and press **Compare**: each is scored on its own validation split (or on a "
    "built-in dataset of the same sample shape) with the same figures `aelab compare` prints, "
    "and their loss curves are drawn on one chart."
)
PLOT_CAPTION = (
    "*One line per ticked run, in its own colour: its total loss on its validation data after "
    "each epoch, as recorded while it trained (a run that held nothing out shows its training "
    "loss, marked · train). A loss is in its model's own units (a VAE's summed nats per sample, "
    "an autoencoder's MSE per element), so lines compare best between runs of the same loss; "
    "runs whose losses are five times smaller than the largest get a second panel on their own "
    "scale, so no curve is flattened against the axis.*"
)
SPLIT_TEXT = {"val": "validation split", "all": "all of it", "whole": "whole"}


def tick_choices(ticked: Any) -> Any:
    """The comparison's run list, refreshed with the saved runs (newest first); runs still saved
    stay ticked."""
    choices = training.run_choices()
    ids = {run_id for _, run_id in choices}
    keep = [r for r in _ids(ticked) if r in ids]
    return gr.update(choices=choices, value=keep)


def _ids(value: Any) -> list[str]:
    """The ticked run ids, each once, in order (one id or a list of them)."""
    if value is None or value == "":
        return []
    items = [value] if isinstance(value, str) else list(value)
    return list(dict.fromkeys(str(v).strip() for v in items if str(v).strip()))


def _data_choice(choice: Any) -> str | None:
    """None for each run's own data, else a built-in dataset's name (never a path)."""
    if choice in (None, "", OWN):
        return None
    names = list(get_datasets())
    if choice not in names:
        raise AelabError(
            f"Score the runs on {OWN}, or on a built-in dataset ({', '.join(names)}); "
            f"'{choice}' is not one."
        )
    return str(choice)


def _count(value: Any, what: str, default: int) -> int:
    """A whole number of samples, 0 or more."""
    if value is None or value == "":
        return default
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if not number.is_integer() or number < 0:
        raise AelabError(f"The {what} must be a whole number, 0 or more, not {value!r}.")
    return int(number)


def _scoring_data(run: Any, area: UploadArea) -> None:
    """Make the run's own data readable for scoring, or say in one sentence why it is gone: an
    upload is read again from the server's copy while it is there unchanged (the run's record
    is pointed at it, in memory only); a file elsewhere must still exist."""
    meta = run.data_meta or {}
    source = str(meta.get("source") or "")
    record = meta.get("upload")
    gone = (
        f"The data of run {run.run_id}, {describe_data(meta)}, is no longer available here, so "
        "the run cannot be scored on it again; untick the run, or score on a built-in dataset "
        "of the same shape."
    )
    if record:
        files = restorable(record, gr.utils.get_upload_folder())
        if files is None:
            raise AelabError(gone)
        run.data_meta = {**meta, "source": str(area.prepare(files).target)}
    elif not source:
        raise AelabError(
            f"Run {run.run_id} does not record where its data came from, so it cannot be scored "
            "on it; untick it, or score on a built-in dataset of the same shape."
        )
    elif not source.startswith("builtin:") and not Path(source).exists():
        raise AelabError(gone)


def _score(run_id: str, data: str | None, nll: int, fd: int) -> tuple[dict[str, Any], Any]:
    """One run's row of the comparison (see :func:`aelab.compare.compare_row`) and the run."""
    from ..api import Trained

    run = load_run_by_id(run_id)  # its errors name the run already
    area = UploadArea()
    try:
        if data is None:
            _scoring_data(run, area)
        (row,) = compare_rows([Trained(run)], data, nll_samples=nll, fd_samples=fd)
    except AelabError as exc:
        text = str(exc)
        raise AelabError(
            text if run_id in text else f"Run {run_id} cannot be scored: {text}"
        ) from None
    except Exception as exc:  # a plugin's bug: still one sentence naming the run
        raise AelabError(f"Run {run_id} cannot be scored: {sentence(exc)}") from None
    finally:
        area.cleanup()
    upload = (run.data_meta or {}).get("upload") or {}
    row["data"] = upload.get("name") or row["data"]  # the user's name for an upload
    return row, run


def _cell(value: Any, digits: int = 4) -> Any:
    """A figure for the table: rounded, '–' when missing, inf or nan spelled out."""
    if value is None:
        return "–"
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return training._round(value, digits)


def _loss_column(rows: list[dict[str, Any]]) -> str:
    return "val loss" if all(r["split"] == "val" for r in rows) else "loss"


def table(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """The comparison as a table: one row per run; the loss, the literature's figures, each
    model's own metrics and the training speed."""
    keys = figure_keys(rows)
    columns = [
        "model",
        "run",
        "data",
        "epochs",
        "n",
        _loss_column(rows),
        *(FIGURE_NAMES[k] for k in keys),
    ]
    metrics = {}
    for name in dict.fromkeys(m for r in rows for m in r["metrics"]):
        metrics[name] = name if name not in columns else f"{name} (model's metric)"
    columns += [*metrics.values(), "samples/s"]
    out = []
    for r in rows:
        sps = r["samples_per_s"]
        out.append(
            [
                r["model"],
                r["run"],
                f"{r['data']}, {SPLIT_TEXT.get(r['split'], r['split'])}",
                r["epochs"],
                r["n"],
                _cell(r["losses"].get("total")),
                *(_cell(r["figures"].get(k)) for k in keys),
                *(_cell(r["metrics"].get(m)) for m in metrics),
                round(sps) if sps else "–",
            ]
        )
    return pd.DataFrame(out, columns=columns)


def note(rows: list[dict[str, Any]], data: str | None, nll: int, fd: int) -> str:
    """What the table shows and how each figure was computed (the lines `aelab eval` prints),
    with the command that prints the same table."""
    ids = [r["run"] for r in rows]
    where = (
        f"the whole built-in `{data}` data"
        if data
        else "its own validation split (a run that held nothing out: all its data)"
    )
    lines = [
        f"**Compared {len(rows)} run{'s' if len(rows) != 1 else ''}**, each scored on {where}.",
        "",
        f"- **{_loss_column(rows)}**: the run's own training loss (total) on that data, in its "
        "model's units; it compares runs of the same loss.",
    ]
    shown = [FIGURE_NAMES[k] for k in figure_keys(rows)]
    if shown:
        lines.append(
            f"- **{', '.join(shown)}**: computed alike for every model they apply to (the "
            "reconstruction figures per element or per sample of the data, the Fréchet distance "
            "of generated samples), so they compare across models; '–' where a figure does not "
            "apply (a GAN does not reconstruct, only models that sample get a Fréchet distance)."
        )
    # How each figure was computed: the lines `aelab eval` prints, each once, with the runs it
    # applies to when not all.
    said: dict[str, list[str]] = {}
    for r in rows:
        for line in figure_notes(r["figures"]):
            said.setdefault(line, []).append(r["run"])
    for line, runs in said.items():
        lines.append(f"- {line}" if len(runs) == len(rows) else f"- {', '.join(runs)}: {line}")
    for r in rows:
        if r["metrics"]:
            names = ", ".join(f"**{m}**" for m in r["metrics"])
            lines.append(
                f"- {r['run']}: {names}, metrics the `{r['model']}` model reports itself, on the "
                "same data; never part of its loss."
            )
    lines.append("- **samples/s**: training speed in the run's last epoch.")
    command = ["aelab", "compare", *ids]
    if data:
        command += ["--data", data]
    if nll:
        command += ["--nll-samples", str(nll)]
    if fd != 1000:
        command += ["--fd-samples", str(fd)]
    lines += ["", f"The same table from the command line: `{' '.join(command)}`"]
    return "\n".join(lines)


def compare(
    run_ids: Any, data_choice: Any = OWN, nll_samples: Any = 0, fd_samples: Any = 1000
) -> Iterator[tuple[Any, Any, Any, Any]]:
    """Score the ticked runs the same way and show them side by side (the /compare endpoint):
    yields (table, note, loss chart, small-scale loss chart)."""
    ids = _ids(run_ids)
    if not ids:
        raise AelabError("Tick at least one saved run to compare (the list above the table).")
    data = _data_choice(data_choice)
    nll = _count(nll_samples, "number of NLL samples", 0)
    fd = _count(fd_samples, "number of Fréchet distance samples", 1000)
    rows, histories = [], {}
    for run_id in ids:
        row, run = _score(run_id, data, nll, fd)
        rows.append(row)
        histories[run.run_id] = list(run.history)
    main, small = curves.run_panels(histories)
    # Clear the chart first so it takes these runs' lines from the frame that follows.
    yield gr.skip(), gr.skip(), None, gr.skip()
    yield table(rows), note(rows, data, nll, fd), main, small
