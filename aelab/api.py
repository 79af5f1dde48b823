"""The Python API: train a model, load a run, and use it. The CLI, the lab and the scikit-learn
estimators call these functions; none of them reaches past it into the trainer.

    import aelab
    ae = aelab.train("autoencoder", "digits", code_size=16, epochs=5)
    codes = ae.encode(x)              # x in the units of the training data
    scores = ae.anomaly(x).scores
    ae.export()

Arrays go in and come out in the units of the data the model was trained on: the run's recorded
scaling maps them to [0, 1] on the way in and back on the way out.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

import numpy as np

from .errors import AelabError, DataError, ParamsError

TRAIN_SETTINGS = (
    "epochs",
    "batch_size",
    "lr",
    "optimizer",
    "seed",
    "device",
    "val_fraction",
    "precision",
    "compile",
    "workers",
    "threads",
)


# -- data ----------------------------------------------------------------------------------------


def from_array(
    x: Any, labels: Any = None, name: str = "array", feature_names: list[str] | None = None
) -> Any:
    """An in-memory Dataset of an array: (N, D) flat data, or images as (N, H, W), (N, C, H, W)
    or (N, H, W, C); scaled to [0, 1] the way a file of the same values would be."""
    from . import data as data_mod
    from . import loaders

    arr = np.asarray(x)
    where = f"The {name} data"
    loaders.check_numeric_dtype(arr.dtype, where)
    arr, kind = loaders.interpret_array(arr, where)
    if len(arr) < 2:
        raise DataError(f"{where} has {len(arr)} sample(s); at least 2 are needed to train.")
    data_mod.check_scalable(arr, where)
    scaling = data_mod.choose_scaling(arr, kind)
    if labels is not None:
        labels, label_names = loaders.labels_from_values(np.asarray(labels), where, len(arr))
    else:
        label_names = None
    return data_mod.Dataset(
        name=name,
        x=data_mod.apply_scaling(arr, scaling),
        kind=kind,
        labels=labels,
        label_names=label_names,
        scaling=scaling,
        feature_names=feature_names,
    )


def dataset(
    data: Any = "digits",
    *,
    labels: Any = None,
    image_size: int | None = None,
    series: Any = None,
    stream: bool | str = False,
    keep_labels: Any = None,
) -> Any:
    """A dataset from a built-in name, a file or folder, an array, or a Dataset as it is;
    ``keep_labels`` keeps only those classes (the one-class protocol)."""
    from . import data as data_mod

    if isinstance(data, (str, os.PathLike)):
        out = data_mod.load_data(data, image_size=image_size, series=series, stream=stream)
    elif isinstance(data, np.ndarray) or isinstance(data, (list, tuple)):
        out = from_array(data, labels)
    elif hasattr(data, "sample_shape") and hasattr(data, "kind"):
        out = data
    else:
        raise DataError(
            f"Data must be a built-in dataset name, a path, an array or an aelab Dataset, not "
            f"{type(data).__name__}."
        )
    return data_mod.keep_labels(out, keep_labels) if keep_labels else out


# -- training ------------------------------------------------------------------------------------


def make_trainer(
    model: str | None = None,
    data: Any = None,
    *,
    params: dict[str, Any] | None = None,
    config: dict[str, Any] | None = None,
    resume: Any = None,
    image_size: int | None = None,
    series: Any = None,
    stream: bool | str = False,
    keep_labels: Any = None,
    callbacks: Iterable[Any] = (),
    save: bool = True,
    runs_dir: str | os.PathLike | None = None,
    step_every: int = 1,
) -> Any:
    """A prepared-to-run Trainer: the model by id (or the ``resume`` run's), its params, the
    data loaded and checked against a resumed run, the training settings, the trackers."""
    from .plugins import get_model
    from .runs import Run, load_run
    from .train import Trainer

    if resume is not None and not isinstance(resume, Run):
        resume = load_run(resume, runs_dir)
    if resume is not None:
        spec = resume.spec
        if model and model != spec.id:
            raise AelabError(f"Run '{resume.run_id}' is a '{spec.id}' model, not '{model}'.")
    elif not model:
        raise AelabError("Name a model to train (`aelab models` lists them) or resume a run.")
    else:
        spec = get_model(model)
    chosen = spec.validate_params(
        {**(resume.params.model_dump() if resume else {}), **(params or {})}
    )
    if resume is not None:
        resume.params = chosen
    settings = {**(resume.config.model_dump() if resume else {}), **(config or {})}
    if data is None:
        if resume is None:
            data = "digits"
        else:
            data = resume.data_meta.get("source", "").removeprefix("builtin:")
            if not data:
                raise AelabError("Pass the data: the run does not record where it came from.")
    series = series or (resume.series if resume is not None else None)
    keep = keep_labels or (resume.data_meta.get("kept_labels") if resume else None)
    try:
        loaded = dataset(
            data, image_size=image_size, series=series, stream=stream, keep_labels=keep
        )
    except DataError as first:  # a series run resumed on data that is no series
        if resume is None or series is None or not isinstance(data, (str, os.PathLike)):
            raise
        try:
            loaded = dataset(data, image_size=image_size)  # to say how it differs
        except AelabError:
            raise first from None
    if resume is not None:  # never continue a run on data of another kind or shape
        from .ui.uploads import data_mismatch

        problem = data_mismatch(resume.data_meta, loaded.meta())
        if problem:
            raise AelabError(problem)
    return Trainer(
        spec,
        chosen,
        loaded,
        settings,
        resume=resume,
        callbacks=list(callbacks),
        save=save,
        runs_dir=None if runs_dir is None else os.fspath(runs_dir),
        step_every=step_every,
    )


def train(
    model: str | None = None,
    data: Any = "digits",
    *,
    resume: Any = None,
    progress: bool = True,
    log: Iterable[str] | str = (),
    log_options: dict[str, Any] | None = None,
    callbacks: Iterable[Any] = (),
    save: bool = True,
    runs_dir: str | os.PathLike | None = None,
    labels: Any = None,
    keep_labels: Any = None,
    image_size: int | None = None,
    stream: bool | str = False,
    **settings: Any,
) -> Trained:
    """Train a registered model and return it, ready to use.

    ``data``: a built-in name, a path, an array (``labels`` beside it) or a Dataset.
    Keyword arguments are the training settings (``epochs``, ``batch_size``, ``lr``,
    ``optimizer``, ``seed``, ``device``, ``val_fraction``, ``precision``, ``compile``,
    ``workers``) and the model's own hyperparameters (``aelab models ID`` lists them).
    ``progress``: a progress bar (tqdm: a widget in a notebook); ``log``: trackers by name
    (``"tensorboard"``, ``"mlflow"``) with ``log_options`` (``log_dir``, ``experiment``, ...);
    ``resume``: a run (id, folder or Trained) to continue.
    """
    from .callbacks import TqdmProgress
    from .tracking import make_trackers

    trackers = make_trackers(log or [], **(log_options or {}))  # before any data is read
    config = {k: settings.pop(k) for k in TRAIN_SETTINGS if k in settings}
    if isinstance(resume, Trained):
        resume = resume.run
    if labels is not None and isinstance(data, (np.ndarray, list, tuple)):
        data = from_array(data, labels)
    trainer = make_trainer(
        model,
        None if resume is not None and isinstance(data, str) and data == "digits" else data,
        params=settings,
        config=config,
        resume=resume,
        image_size=image_size,
        stream=stream,
        keep_labels=keep_labels,
        callbacks=[*callbacks, *([TqdmProgress()] if progress else [])],
        save=save,
        runs_dir=runs_dir,
    )
    trainer.prepare()
    if trainer.strategy.is_main:  # under torchrun, rank 0 alone logs, as it alone saves
        trainer.callbacks.extend(trackers)
    trainer.step_every = max(1, trainer.steps_per_epoch // 100)
    done = trainer.fit()
    if done.status in ("diverged", "failed"):
        import warnings

        warnings.warn(done.message, RuntimeWarning, stacklevel=2)
    return Trained(_run_of(trainer, done), done)


def _run_of(trainer: Any, done: Any) -> Any:
    """The saved run (or, unsaved, the same record in memory) of a finished training."""
    from pathlib import Path

    from .runs import Run, load_run

    if done.run_dir:
        return load_run(done.run_dir)
    return Run(
        run_id=trainer.run_id,
        path=Path(trainer.run_dir or "."),
        spec=trainer.spec,
        params=trainer.params,
        config=trainer.config,
        model=trainer.model.cpu().eval(),
        history=list(trainer.history),
        data_meta=trainer.data.meta(),
        status=done.status,
    )


def load(run: Any, runs_dir: str | os.PathLike | None = None, device: str = "cpu") -> Trained:
    """A saved run (an id or a run folder), ready to use."""
    from .runs import load_run

    return Trained(load_run(run, runs_dir, device))


# -- evaluation ----------------------------------------------------------------------------------


def evaluate_run(
    trained: Trained,
    data: Any = None,
    split: str | None = None,
    *,
    nll_samples: int = 0,
    fd_samples: int = 1000,
    image_size: int | None = None,
) -> dict[str, Any]:
    """What ``aelab eval`` reports for a run (see :meth:`Trained.evaluate`): what was scored
    (file, split, n), the loss terms and metrics, and :func:`aelab.assessment.assess`."""
    import torch

    from .assessment import assess
    from .data import load_run_data
    from .train import batch_tensors, evaluate_batches

    run = trained.run
    if data is not None and split is not None:
        raise ParamsError(
            "A split applies to the run's own data; data given to evaluate is scored whole, "
            "so leave the split out."
        )
    if data is None:
        split = split or "val"
        if split not in ("val", "all"):
            raise ParamsError(f"The split must be val or all, not '{split}'.")
        fraction = run.config.val_fraction if split == "val" else 0.0
        if split == "val" and fraction == 0:
            split = "all"  # the run held nothing out
        train_part, val_part = load_run_data(run.data_meta, fraction, run.config.seed)
        chosen = val_part if val_part is not None else train_part
        source = str(run.data_meta.get("source") or run.data_meta.get("name") or "")
    else:
        if isinstance(data, (str, os.PathLike)):
            chosen = trained._data(dataset(data, image_size=image_size))
        else:
            chosen = trained._data(data)
        split, source = "whole", str(getattr(chosen, "source", "") or chosen.name)
    model = run.model
    if tuple(chosen.sample_shape) != tuple(model.sample_shape):
        hint = " (--image-size resizes images)" if chosen.kind == "image" else ""
        raise DataError(
            f"'{chosen.name}' has samples of shape {list(chosen.sample_shape)}, but run "
            f"'{run.run_id}' was trained on samples of shape {list(model.sample_shape)}; "
            f"evaluate it on data of that shape{hint}."
        )
    tensors = batch_tensors(chosen, model.batch_fields, torch.device("cpu"), run.spec.id)
    model.seed_rng(0, "cpu")  # a loss that samples (a VAE's) reads the same twice
    losses, metrics = evaluate_batches(model, tensors)
    figures = assess(model, chosen, nll_samples=nll_samples, fd_samples=fd_samples)
    return {
        "run": run.run_id,
        "model": run.spec.id,
        "data": chosen.name,
        "source": source,
        "split": split,
        "n": len(chosen),
        "losses": losses,
        "metrics": metrics,
        "figures": figures,
    }


# -- a trained model -----------------------------------------------------------------------------


class Trained:
    """A trained model and its run: the verbs of the model and of its applications.

    Inputs are arrays in the units of the training data (or an aelab Dataset, already scaled);
    outputs come back in those units.
    """

    def __init__(self, run: Any, done: Any = None):
        self.run = run
        self.done = done

    def __repr__(self) -> str:
        return f"<aelab.Trained {self.run.spec.id} run={self.run_id!r} status={self.status!r}>"

    # -- what it is --------------------------------------------------------------------------
    run_id = property(lambda self: self.run.run_id, doc="The run's id (its folder's name).")
    path = property(lambda self: self.run.path, doc="The run's folder.")
    model = property(lambda self: self.run.model, doc="The torch module.")
    spec = property(lambda self: self.run.spec, doc="The model's registration.")
    params = property(lambda self: self.run.params, doc="The model's hyperparameters.")
    config = property(lambda self: self.run.config, doc="The training settings.")
    history = property(lambda self: self.run.history, doc="Per-epoch losses and metrics.")
    status = property(lambda self: self.run.status, doc="completed, stopped, diverged, ...")

    @property
    def scaling(self) -> dict:
        """How raw values were mapped to [0, 1] for training."""
        return dict((self.run.data_meta or {}).get("scaling") or {"method": "none"})

    @property
    def losses(self) -> dict[str, float]:
        """The last epoch's training losses."""
        return dict(self.history[-1]["losses"]) if self.history else {}

    @property
    def val_losses(self) -> dict[str, float]:
        """The last epoch's validation losses."""
        return dict(self.history[-1].get("val_losses") or {}) if self.history else {}

    # -- units in and out --------------------------------------------------------------------
    def scale(self, x: Any) -> np.ndarray:
        """``x`` (training-data units, any layout a file of them could have) as the model's
        [0, 1] input of shape (N, *sample_shape)."""
        from . import loaders
        from .data import apply_scaling

        if hasattr(x, "sample_shape") and hasattr(x, "x"):  # a Dataset: already scaled
            arr = np.asarray(x.x, dtype=np.float32)
        else:
            raw = np.asarray(x)
            loaders.check_numeric_dtype(raw.dtype, "The input")
            want = tuple(self.model.sample_shape)
            if tuple(raw.shape) == want:  # one sample
                raw = raw[None]
            if tuple(raw.shape[1:]) != want and raw.ndim in (3, 4):
                raw = loaders.to_layout(raw, loaders.array_layout(raw.shape, "The input"))
            arr = apply_scaling(raw, self.scaling)
        want = tuple(self.model.sample_shape)
        if tuple(arr.shape[1:]) != want:
            raise DataError(
                f"The input has samples of shape {list(arr.shape[1:])}, but this model was "
                f"trained on samples of shape {list(want)}."
            )
        return arr

    def unscale(self, x01: np.ndarray) -> np.ndarray:
        """Model outputs in [0, 1] back in the units of the training data."""
        from .data import invert_scaling

        return invert_scaling(np.asarray(x01), self.scaling)

    # -- verbs -------------------------------------------------------------------------------
    def encode(self, x: Any) -> np.ndarray:
        """The codes of ``x``, (N, code units)."""
        from . import inspect

        return inspect.encode(self.model, self.scale(x))

    def decode(self, codes: Any) -> np.ndarray:
        """Outputs decoded from codes, in data units."""
        import torch

        self.model.eval()
        with torch.no_grad():
            out = self.model.decode(torch.as_tensor(np.asarray(codes, dtype=np.float32)))
        return self.unscale(out.cpu().numpy())

    def reconstruct(self, x: Any) -> np.ndarray:
        """Deterministic reconstructions of ``x`` (the mean code for a VAE), in data units."""
        from . import inspect

        return self.unscale(inspect.reconstruct(self.model, self.scale(x)))

    def sample(self, n: int = 16, seed: int = 0) -> np.ndarray:
        """``n`` new samples from the model's prior (generative models), in data units."""
        from . import inspect

        return self.unscale(inspect.samples(self.model, n, seed))

    def evaluate(
        self,
        data: Any = None,
        split: str | None = None,
        *,
        nll_samples: int = 0,
        fd_samples: int = 1000,
        image_size: int | None = None,
    ) -> dict[str, Any]:
        """Losses, the model's own metrics and the literature's figures (MSE, PSNR, SSIM, BCE;
        ELBO and the IWAE NLL bound with ``nll_samples``; the Fréchet distance of generated
        samples) on ``data``: an array in data units, a Dataset, a name or a path, all of it; by
        default the run's own data, its validation split (``split="val"``) or all of it
        (``split="all"``)."""
        return evaluate_run(
            self,
            data,
            split,
            nll_samples=nll_samples,
            fd_samples=fd_samples,
            image_size=image_size,
        )

    def apply(self, application: str, data: Any = None, **params: Any) -> Any:
        """Run a registered application (``aelab applications`` lists them) on ``data`` (an
        array in data units, a Dataset, a name or a path; default the run's own data)."""
        from .plugins import get_application

        spec = get_application(application)
        spec.require(self.model)
        return spec.run(self.model, self._data(data), spec.validate_params(params))

    def anomaly(self, data: Any = None, **params: Any) -> Any:
        """Anomaly scores, the threshold and what it flags (``contamination``, ``score``,
        ``threshold``, ``normal_labels``; see ``aelab anomaly --help``)."""
        return self.apply("anomaly", data, **params)

    def anomaly_scores(self, x: Any) -> np.ndarray:
        """One anomaly score per sample of ``x``, higher = more anomalous."""
        from .apps import anomaly

        return anomaly.scores(self.model, self.scale(x), kind=anomaly.resolve_score(self.model))

    def export(
        self, out_dir: str | os.PathLike | None = None, force: bool = False, **options: Any
    ) -> Any:
        """Write the validated ONNX files and manifest (see ``aelab export``); the result says
        where and what was checked."""
        from .export import export_run

        return export_run(self.run, out_dir=out_dir, force=force, **options)

    def _rescaled(self, data: Any) -> Any:
        """``data`` as the model saw its training data: a file's values mapped through the
        run's scaling rather than the one chosen for the file alone (a test file's range may
        differ from the training data's)."""
        from dataclasses import replace

        from .data import apply_scaling, invert_scaling

        ours, theirs = self.scaling, dict(getattr(data, "scaling", None) or {})
        if not theirs or theirs == ours or getattr(data, "streamed", False):
            return data
        try:
            raw = invert_scaling(data.x, theirs)
        except DataError:  # windows scaled one by one: nothing to map back
            return data
        return replace(data, x=apply_scaling(raw, ours), scaling=ours)

    def _data(self, data: Any) -> Any:
        """A Dataset for an application: the run's own data by default; arrays are scaled."""
        from .data import Dataset, load_run_data

        if data is None:
            return load_run_data(self.run.data_meta)[0]
        if isinstance(data, (str, os.PathLike)):
            data = dataset(data)
        if hasattr(data, "sample_shape"):
            return self._rescaled(data)
        x = self.scale(data)
        kind = "image" if len(self.model.sample_shape) == 3 else "flat"
        series = None
        if kind == "flat" and len(self.model.sample_shape) == 2:
            raise DataError("Pass windows of a series as a Dataset (aelab.load_data).")
        return Dataset("array", x, kind, scaling=self.scaling, series=series)
