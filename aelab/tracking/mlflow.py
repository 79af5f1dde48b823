"""MLflow logging (``aelab train --log mlflow``; needs ``pip install 'aelab[mlflow]'``).

One MLflow run per training, named by the aelab run id: the hyperparameters as params
(``model``, ``params.KEY``, ``train.KEY``), every loss term and metric per epoch as metrics
(step = epoch), and, once the run is saved, its folder as artifacts under ``<run id>/`` (so that
a downloaded copy is a run folder aelab loads). The tracking URI is ``tracking_uri``, else
``MLFLOW_TRACKING_URI`` (or ``mlflow.set_tracking_uri``), else MLflow's default; where that
default is a database that mlflow-skinny cannot open, ``./mlruns``.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import time
from pathlib import Path
from typing import Any

from ..callbacks import Callback
from ..events import Done, Epoch, Start
from ..hookspecs import hookimpl
from . import Tracker, epoch_scalars, hyperparameters

log = logging.getLogger("aelab.tracking")
DEFAULT_EXPERIMENT = "aelab"
# How an aelab training ended, as an MLflow run status.
RUN_STATUS = {
    "completed": "FINISHED",
    "stopped": "KILLED",
    "interrupted": "KILLED",
    "diverged": "FAILED",
    "failed": "FAILED",
}
MAX_PARAM_CHARS = 6000  # MLflow's limit on a param's value (since 2.10)


def tracking_uri(explicit: str | None = None) -> str:
    """Where runs go: ``explicit``, the URI MLflow was given, or its default (``./mlruns``
    when the default is a database and SQLAlchemy, which mlflow-skinny lacks, is missing)."""
    import mlflow

    if explicit:
        return str(explicit)
    uri = mlflow.get_tracking_uri()
    is_set = getattr(mlflow.tracking, "is_tracking_uri_set", None)
    if is_set() if is_set is not None else os.environ.get("MLFLOW_TRACKING_URI"):
        return uri
    if uri.startswith("sqlite:") and importlib.util.find_spec("sqlalchemy") is None:
        return Path("mlruns").resolve().as_uri()
    return uri


def _is_file_store(uri: str) -> bool:
    return uri.startswith("file:") or "://" not in uri and not uri.startswith("databricks")


class MLflowLogger(Callback):
    """Logs a training to MLflow. ``tracking_uri`` and ``experiment`` (default
    ``MLFLOW_EXPERIMENT_NAME``, else "aelab") say where; ``artifacts=False`` leaves the run
    folder out."""

    def __init__(
        self, tracking_uri: str | None = None, experiment: str | None = None, artifacts: bool = True
    ):
        self.tracking_uri = tracking_uri
        self.experiment = experiment
        self.artifacts = artifacts
        self.client: Any = None
        self.mlflow_run_id: str | None = None
        self.ended = False

    def _experiment_id(self) -> str:
        from mlflow.exceptions import MlflowException

        name = self.experiment or os.environ.get("MLFLOW_EXPERIMENT_NAME") or DEFAULT_EXPERIMENT
        found = self.client.get_experiment_by_name(name)
        if found is not None:
            return found.experiment_id
        try:
            return self.client.create_experiment(name)
        except MlflowException:  # another training created it meanwhile
            found = self.client.get_experiment_by_name(name)
            if found is None:
                raise
            return found.experiment_id

    def on_start(self, trainer: Any, event: Start) -> None:
        from mlflow.entities import Param
        from mlflow.tracking import MlflowClient

        uri = tracking_uri(self.tracking_uri)
        if _is_file_store(uri):
            # MLflow 3 asks for this before writing to a folder, the one store mlflow-skinny has.
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        self.client = MlflowClient(uri)
        tags = {
            "aelab.run_id": trainer.run_id,
            "aelab.model": event.model_id,
            "aelab.data": str(trainer.data.name),
            "aelab.device": event.device,
        }
        run = self.client.create_run(self._experiment_id(), run_name=trainer.run_id, tags=tags)
        self.mlflow_run_id = run.info.run_id
        params = [Param(k, str(v)[:MAX_PARAM_CHARS]) for k, v in hyperparameters(trainer).items()]
        for i in range(0, len(params), 100):  # MLflow takes at most 100 params a call
            self.client.log_batch(self.mlflow_run_id, params=params[i : i + 100])

    def on_epoch(self, trainer: Any, event: Epoch) -> None:
        from mlflow.entities import Metric

        if self.mlflow_run_id is None:
            return
        now = int(time.time() * 1000)
        metrics = [Metric(k, v, now, event.epoch) for k, v in epoch_scalars(event).items()]
        self.client.log_batch(self.mlflow_run_id, metrics=metrics)

    def on_end(self, trainer: Any, event: Done) -> None:
        # The run is saved by now: SaveRun, the first callback, ends before this one.
        if self.mlflow_run_id is None:
            return
        self.client.set_tag(self.mlflow_run_id, "aelab.status", event.status)
        folder = Path(event.run_dir) if event.run_dir else None
        if self.artifacts and folder is not None and (folder / "run.json").is_file():
            self._log_folder(folder, trainer.run_id)
        self.client.set_terminated(self.mlflow_run_id, RUN_STATUS.get(event.status, "FINISHED"))
        self.ended = True

    def _log_folder(self, folder: Path, name: str) -> None:
        """The run folder's files under ``name/``, less the lock and other hidden files."""
        for path in sorted(folder.rglob("*")):
            rel = path.relative_to(folder)
            if not path.is_file() or any(part.startswith(".") for part in rel.parts):
                continue
            where = "/".join([name, *rel.parts[:-1]])
            self.client.log_artifact(self.mlflow_run_id, str(path), where)

    def close(self, trainer: Any) -> None:
        if self.mlflow_run_id is not None and not self.ended:  # training raised before its end
            try:
                self.client.set_terminated(self.mlflow_run_id, "FAILED")
            except Exception:
                log.exception("MLflow: the run could not be marked failed")
            self.ended = True


@hookimpl
def register_trackers(register: Any) -> None:
    register(
        Tracker(
            name="mlflow",
            label="MLflow",
            description="an MLflow run (MLFLOW_TRACKING_URI, else ./mlruns): the "
            "hyperparameters, every loss and metric per epoch, and the run folder as artifacts",
            make=MLflowLogger,
            requires=("mlflow",),
            install="pip install 'aelab[mlflow]'",
        )
    )
