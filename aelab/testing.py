"""Conformance kit for plugin authors: checks any ModelSpec against the contract aelab relies on.

Every check collects all it finds and raises one AssertionError listing every problem, each a
sentence saying what is wrong and how to fix it; aelab's own test suite runs the kit on every
built-in model. docs/plugins.md describes the contract it checks. The whole kit at once::

    from aelab.testing import check_all

    def test_my_model(tmp_path):
        check_all(MY_SPEC, tiny_dataset(), tmp_path)

or check by check (``check_spec``, ``check_build_and_step``, ``check_graphs``,
``check_roundtrip``), or ``conformance_report(...)`` for the list of findings without raising.
"""

from __future__ import annotations

import functools
import math
import os
import re
import types
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch

from .models import (
    BATCH_DTYPES,
    CAPABILITIES,
    CODE_KINDS,
    METRICS,
    GraphSpec,
    Model,
    ModelSpec,
    build_seeded,
)
from .params import Params, TrainConfig, schema_problems
from .roles import PRIORS, ROLES

__all__ = [
    "GraphSpec",
    "build",
    "check_all",
    "check_build_and_step",
    "check_graphs",
    "check_roundtrip",
    "check_spec",
    "conformance_report",
]

_ID = re.compile(r"^[a-z][a-z0-9_-]*$")
BATCH = 16  # samples in the batch the kit steps on
_GLOBAL_RNG_FIX = (
    "draw training noise from the model's own generator with self.randn_like(t), "
    "self.rand_like(t) or self.randn(*shape, like=t) (or pass "
    "generator=self.generator_for(t.device) to other torch random functions), so that two "
    "trainings in one process, such as two lab tabs, each reproduce their seed"
)


def _spec_id(spec: Any) -> str:
    return getattr(spec, "id", None) or type(spec).__name__


def _message(spec: Any, problems: list[str]) -> str:
    """One message listing every problem: one line, or a header and a bullet per problem."""
    if len(problems) == 1:
        return f"Model '{_spec_id(spec)}': {problems[0]}"
    lines = "\n".join(f"  - {p}" for p in problems)
    return f"Model '{_spec_id(spec)}' fails {len(problems)} conformance checks:\n{lines}"


def _raise(spec: Any, problems: list[str]) -> None:
    if problems:
        raise AssertionError(_message(spec, problems))


def _exc(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0].rstrip(".") if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


# -- the spec ------------------------------------------------------------------------------


def spec_problems(spec: ModelSpec) -> list[str]:
    """What is wrong with a spec's identity, texts and parameter schema (no model is built)."""
    if not isinstance(spec, ModelSpec):
        return [f"expected a ModelSpec, got {type(spec).__name__}."]
    problems = []
    if not isinstance(spec.id, str) or not _ID.match(spec.id):
        problems.append(
            "the id must be lower-case letters, digits, '-' or '_', starting with a letter."
        )
    for name in ("name", "description", "help"):
        if not str(getattr(spec, name)).strip():
            problems.append(f"'{name}' is empty; the lab and `aelab models` show it.")
    if str(spec.description).strip() and not spec.description.rstrip().endswith("."):
        problems.append("the description should be one sentence ending with a full stop.")
    if str(spec.help).strip() and len(spec.help) < 120:
        problems.append(
            "the help text is under 120 characters; say how it works and what it optimises."
        )
    if not spec.accepts or not set(spec.accepts) <= {"flat", "image"}:
        problems.append(f"accepts must list 'flat' and/or 'image', not {spec.accepts!r}.")
    schema = schema_problems(spec.params)
    problems += [f"{p}; the plugin host refuses to register the model until then." for p in schema]
    if isinstance(spec.params, type) and issubclass(spec.params, Params):
        try:
            spec.params()
        except Exception as exc:  # noqa: BLE001 - any failure means the defaults are unusable
            problems.append(f"the default parameters do not validate ({_exc(exc)}).")
    try:
        factory = spec.resolve_factory()
    except Exception as exc:  # noqa: BLE001 - an import path that does not import
        problems.append(f"the factory {spec.factory!r} cannot be imported ({_exc(exc)}).")
        return problems
    # A factory function (not the class) has no attribute: the spec's declaration stands in.
    caps = getattr(factory, "capabilities", None)
    if caps is None:
        caps = spec.capabilities or None
    if caps is None or not set(caps) <= set(CAPABILITIES):
        problems.append(f"the model class must declare capabilities within {CAPABILITIES}.")
    elif set(spec.capabilities) != set(caps):
        # What the lab and the CLI list (the spec's) must be what the built model can do.
        problems.append(
            f"the spec declares capabilities {sorted(spec.capabilities)} but the model class "
            f"{sorted(caps)}; make them the same."
        )
    return problems


def check_spec(spec: ModelSpec) -> None:
    """The spec's identity, texts and parameter schema are complete enough for the CLI and lab."""
    _raise(spec, spec_problems(spec))


# -- build and one step --------------------------------------------------------------------


def build(spec: ModelSpec, data: Any, params: dict[str, Any] | None = None, seed: int = 0) -> Model:
    """Build ``spec`` for ``data`` the way the trainer does: seeded weights and generator."""
    return build_seeded(spec, params or {}, data.sample_shape, data.kind, seed)


def _batch(model: Model, data: Any, n: int = BATCH) -> tuple[dict[str, torch.Tensor], list[str]]:
    """The first ``n`` samples as the trainer batches them: the model's batch fields only, each
    with its dtype from BATCH_DTYPES."""
    arrays = data.arrays()
    batch, problems = {}, []
    for name in model.batch_fields:
        if name not in arrays:
            problems.append(
                f"batch_fields lists '{name}', but the data given to the kit has only "
                f"{', '.join(arrays)}; check it with data that has '{name}' (labelled data "
                "for 'y')."
            )
            continue
        values = np.asarray(arrays[name][:n])
        batch[name] = torch.as_tensor(values, dtype=BATCH_DTYPES.get(name))
    return batch, problems


def _scalar_problem(value: Any, what: str) -> str | None:
    """Why ``value`` is not a finite scalar (tensor or number), or None."""
    if isinstance(value, torch.Tensor):
        if value.dim() != 0:
            return f"{what} is a tensor of shape {tuple(value.shape)}, not a scalar."
        number = float(value.detach())
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        number = float(value)
    else:
        return f"{what} is a {type(value).__name__}, not a scalar tensor or a number."
    if not math.isfinite(number):
        return f"{what} is not finite ({number})."
    return None


def _metric_problems(out: dict[str, Any], where: str) -> list[str]:
    """A step's ``"metrics"``: a dict of finite scalars that are not losses."""
    if METRICS not in out:
        return []
    metrics = out[METRICS]
    if not isinstance(metrics, dict):
        return [
            f"{where} returned '{METRICS}' as a {type(metrics).__name__}; it must be a dict of "
            "scalars by name."
        ]
    problems = []
    for key, value in metrics.items():
        problem = _scalar_problem(value, f"metric '{key}' of {where}")
        if problem:
            problems.append(problem)
    return problems


def _term_problems(out: Any, where: str, *, training: bool) -> list[str]:
    """A step's loss terms: a dict with 'loss' (training), every term a finite scalar tensor."""
    if not isinstance(out, dict):
        return [f"{where} returned a {type(out).__name__}, not a dict of loss terms."]
    problems = []
    if training and "loss" not in out:
        problems.append(f"{where} returned no 'loss' term (got {list(out)}).")
    for key, value in out.items():
        if key == METRICS:
            continue
        if training and not isinstance(value, torch.Tensor):
            problems.append(
                f"loss term '{key}' of {where} is a {type(value).__name__}, not a scalar tensor."
            )
            continue
        problem = _scalar_problem(value, f"loss term '{key}' of {where}")
        if problem:
            problems.append(problem)
    if training and isinstance(out.get("loss"), torch.Tensor) and not out["loss"].requires_grad:
        problems.append(f"'loss' of {where} does not depend on any weight (no gradient).")
    return problems + _metric_problems(out, where)


def _model_problems(model: Any, data: Any) -> list[str]:
    """The built model's declarations: class, shapes, code, batch fields, steps."""
    if not isinstance(model, Model):
        return [f"the factory returned {type(model).__name__}, not an aelab Model."]
    problems = []
    if tuple(model.sample_shape) != tuple(data.sample_shape):
        problems.append(
            f"sample_shape {tuple(model.sample_shape)} differs from the data's "
            f"{tuple(data.sample_shape)}."
        )
    if model.code_kind not in CODE_KINDS:
        problems.append(f"code_kind is {model.code_kind!r}; it must be one of {CODE_KINDS}.")
    try:
        shape = tuple(model.code_shape)
        if not shape or not all(isinstance(d, int) and d > 0 for d in shape):
            problems.append(f"code_shape {shape} must be a tuple of positive ints.")
    except Exception as exc:  # noqa: BLE001
        problems.append(f"code_shape raised {_exc(exc)}.")
    fields = tuple(model.batch_fields)
    if "x" not in fields:
        problems.append(f"batch_fields {fields} must include 'x', the inputs.")
    if not model.steps or not all(isinstance(s, str) for s in model.steps):
        problems.append(f"steps {model.steps!r} must be a non-empty tuple of optimizer names.")
    if not set(model.capabilities) <= set(CAPABILITIES):
        problems.append(f"capabilities {sorted(model.capabilities)} go beyond {CAPABILITIES}.")
    return problems


def _untouched_global_rng(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Run a check with torch's global generator restored afterwards: the kit never shifts
    the random stream of the test process, whatever the model does."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with torch.random.fork_rng(devices=[]):
            return fn(*args, **kwargs)

    return wrapper


@_untouched_global_rng
def _step_problems(
    spec: ModelSpec, data: Any, params: dict[str, Any] | None
) -> tuple[Model | None, list[str]]:
    """Build, then one training step per optimizer and a validation step: every finding."""
    try:
        model = build(spec, data, params)
    except Exception as exc:  # noqa: BLE001 - the kit reports, it does not crash
        return None, [
            f"building it for {data.kind} data of shape {tuple(data.sample_shape)} raised "
            f"{_exc(exc)}."
        ]
    problems = _model_problems(model, data)
    if isinstance(model, Model) and set(model.capabilities) != set(spec.capabilities):
        problems.append(
            f"the built model can {sorted(model.capabilities)} but its spec lists "
            f"{sorted(spec.capabilities)}; the lab and the CLI offer what the spec lists."
        )
    if not isinstance(model, Model):
        return None, problems
    try:
        optimizers = model.configure_optimizers(TrainConfig())
    except Exception as exc:  # noqa: BLE001
        return model, [*problems, f"configure_optimizers raised {_exc(exc)}."]
    if list(optimizers) != list(model.steps):
        problems.append(
            f"steps {list(model.steps)} differ from the optimizers {list(optimizers)}; "
            "configure_optimizers must return one per step, in the same order."
        )
    batch, batch_problems = _batch(model, data)
    problems += batch_problems
    if "x" not in batch:
        return model, problems
    model.train()
    model.global_step = 0
    before = {k: v.detach().clone() for k, v in model.state_dict().items()}
    stepped = False
    for name, opt in optimizers.items():
        where = f"training_step for '{name}'"
        opt.zero_grad(set_to_none=True)
        # Whatever the step does, the test process's global generator is left as it was.
        with torch.random.fork_rng(devices=[]):
            state = torch.random.get_rng_state()
            try:
                out = model.training_step(dict(batch), name)
            except Exception as exc:  # noqa: BLE001
                problems.append(f"{where} raised {_exc(exc)}.")
                continue
            drew = not torch.equal(state, torch.random.get_rng_state())
        if drew:
            problems.append(
                f"{where} draws from torch's global random generator; {_GLOBAL_RNG_FIX}."
            )
        found = _term_problems(out, where, training=True)
        problems += found
        if found:
            continue
        try:
            out["loss"].backward()
            opt.step()
            stepped = True
        except Exception as exc:  # noqa: BLE001
            problems.append(f"backward or the optimizer step after {where} raised {_exc(exc)}.")
    if stepped and all(torch.equal(before[k], v) for k, v in model.state_dict().items()):
        problems.append("one training step changed no weight.")
    model.eval()
    try:
        with torch.no_grad():
            val = model.validation_step(dict(batch))
    except Exception as exc:  # noqa: BLE001
        problems.append(f"validation_step raised {_exc(exc)}.")
    else:
        problems += _term_problems(val, "validation_step", training=False)
        if isinstance(val, dict) and "total" not in val:
            problems.append(
                "validation_step returned no 'total' term; `aelab runs` and the lab compare "
                "runs by it (the default validation_step adds it)."
            )
    if "sample" in model.capabilities:
        problems += _sample_problems(model, data)
    return model, problems


def _sample_problems(model: Model, data: Any) -> list[str]:
    problems = []
    with torch.random.fork_rng(devices=[]):
        state = torch.random.get_rng_state()
        try:
            out = model.sample(3, generator=torch.Generator().manual_seed(0))
        except Exception as exc:  # noqa: BLE001
            return [f"sample(3) raised {_exc(exc)}."]
        if not torch.equal(state, torch.random.get_rng_state()):
            problems.append(
                "sample(n, generator=g) draws from torch's global random generator; pass "
                "generator=generator to every torch random function it calls."
            )
    if not isinstance(out, torch.Tensor) or tuple(out.shape) != (3, *data.sample_shape):
        got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        problems.append(f"sample(3) gave {got}, expected shape {(3, *data.sample_shape)}.")
    return problems


def check_build_and_step(spec: ModelSpec, data: Any, params: dict[str, Any] | None = None) -> Model:
    """The model builds for ``data``, declares matching optimizers, takes one finite step per
    optimizer without touching torch's global generator, validates and (if it can) samples."""
    model, problems = _step_problems(spec, data, params)
    _raise(spec, problems)
    assert model is not None
    return model


# -- graphs --------------------------------------------------------------------------------


def _graph_input(graph: GraphSpec, n: int = 3, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    if graph.input_range is None:
        return torch.randn(n, *graph.input_shape, generator=g)
    lo, hi = graph.input_range
    return lo + (hi - lo) * torch.rand(n, *graph.input_shape, generator=g)


def _outputs(out: Any) -> list[torch.Tensor]:
    return list(out) if isinstance(out, (tuple, list)) else [out]


@_untouched_global_rng
def _graph_problems(spec: ModelSpec, data: Any, model: Model) -> tuple[list[GraphSpec], list[str]]:
    model.eval()
    try:
        graphs = list(model.graphs())
    except Exception as exc:  # noqa: BLE001
        return [], [f"graphs() raised {_exc(exc)}."]
    if not graphs:
        return [], ["graphs() returned nothing to export."]
    problems = []
    names = [g.name for g in graphs]
    if len(set(names)) != len(names):
        problems.append(f"graph names repeat: {names}; each becomes a file name.")
    code_shape = tuple(model.code_shape)
    sample_shape = tuple(data.sample_shape)
    for graph in graphs:
        where = f"graph '{graph.name}'"
        if graph.role not in ROLES:
            problems.append(f"{where} has role {graph.role!r}; roles are {ROLES}.")
        if graph.prior not in PRIORS:
            problems.append(
                f"{where} has prior {graph.prior!r}; the runtime knows {PRIORS} ('normal' is "
                "N(0, I))."
            )
        if graph.prior == "normal" and graph.input_range is not None:
            problems.append(
                f"{where} has prior 'normal' but a bounded input {graph.input_range}; N(0, I) "
                "inputs are unbounded (input_range=None)."
            )
        x = _graph_input(graph)
        try:
            with torch.no_grad():
                first = _outputs(graph.module(x))
                second = _outputs(graph.module(x))
        except Exception as exc:  # noqa: BLE001
            problems.append(
                f"{where} raised {_exc(exc)} on an input of shape {tuple(x.shape)} "
                f"(its input_shape {tuple(graph.input_shape)} plus the batch axis)."
            )
            continue
        if len(first) != len(graph.output_names):
            problems.append(
                f"{where} returned {len(first)} outputs but declares {graph.output_names}."
            )
        for name, a, b in zip(graph.output_names, first, second):
            if not isinstance(a, torch.Tensor):
                problems.append(f"{where} output '{name}' is a {type(a).__name__}, not a tensor.")
                continue
            if a.dim() == 0 or a.shape[0] != x.shape[0]:
                problems.append(
                    f"{where} output '{name}' lost the batch axis (shape {tuple(a.shape)})."
                )
            if a.dtype != torch.float32:
                problems.append(f"{where} output '{name}' is {a.dtype}; exports give float32.")
            if not torch.equal(a, b):
                problems.append(
                    f"{where} output '{name}' differs between two calls: randomness in eval mode."
                )
        out = first[0] if first and isinstance(first[0], torch.Tensor) else None
        if out is None:
            continue
        if graph.role in ("autoencoder", "decoder", "sampler") and tuple(out.shape[1:]) != (
            sample_shape
        ):
            problems.append(
                f"{where} ({graph.role}) outputs shape {tuple(out.shape[1:])}, not the data's "
                f"{sample_shape}."
            )
        if graph.role in ("decoder", "sampler") and tuple(graph.input_shape) != code_shape:
            problems.append(
                f"{where} ({graph.role}) takes {tuple(graph.input_shape)} but code_shape is "
                f"{code_shape}."
            )
        if graph.role == "encoder" and tuple(out.shape[1:]) != code_shape:
            problems.append(
                f"{where} (encoder) gives codes of shape {tuple(out.shape[1:])}, but code_shape "
                f"is {code_shape}."
            )
    return graphs, problems


def check_graphs(spec: ModelSpec, data: Any, model: Model | None = None) -> list[GraphSpec]:
    """Every exportable graph runs in eval mode, deterministically, with the declared outputs,
    and the shapes its role implies: autoencoder, decoder and sampler outputs are shaped like
    the data, decoder and sampler inputs like ``code_shape``, encoder outputs like
    ``code_shape``; a graph with prior "normal" has an unbounded input."""
    if model is None:
        try:
            model = build(spec, data)
        except Exception as exc:  # noqa: BLE001
            _raise(spec, [f"building it raised {_exc(exc)}."])
    graphs, problems = _graph_problems(spec, data, model)
    _raise(spec, problems)
    return graphs


# -- save and load -------------------------------------------------------------------------


@contextmanager
def _registered(spec: ModelSpec) -> Iterator[None]:
    """Make ``spec`` known to the plugin host while inside, if no plugin registered its id
    (a plugin being written, not yet installed): load_run finds models there."""
    from . import plugins
    from .hookspecs import hookimpl

    if spec.id in plugins.get_models():
        yield
        return
    name, owner = f"aelab_kit_{spec.id}", spec.plugin

    @hookimpl
    def register_models(register: Any) -> None:
        register(spec)

    shim = types.ModuleType(name)
    shim.register_models = register_models  # type: ignore[attr-defined]
    plugins.pm.register(shim, name=name)
    plugins.invalidate()
    try:
        yield
    finally:
        plugins.pm.unregister(name=name)
        plugins.invalidate()
        spec.plugin = owner


@_untouched_global_rng
def _roundtrip_problems(
    spec: ModelSpec, data: Any, tmp_path: str | os.PathLike, model: Model
) -> list[str]:
    refused = schema_problems(spec.params)
    if refused:
        return [
            "save and load could not be checked: the plugin host refuses to register the model "
            f"({refused[0]})."
        ]
    with _registered(spec):
        return _saved_and_loaded(spec, data, tmp_path, model)


def _saved_and_loaded(
    spec: ModelSpec, data: Any, tmp_path: str | os.PathLike, model: Model
) -> list[str]:
    from . import runs

    model.eval()
    config = TrainConfig()
    try:
        folder = runs.save_run(
            runs.new_run_id(spec.id),
            spec,
            model.params,
            config,
            model,
            model.configure_optimizers(config),
            [],
            data.meta(),
            runs_dir=tmp_path,
        )
        loaded = runs.load_run(folder).model
    except Exception as exc:  # noqa: BLE001
        return [f"saving with save_run and loading with load_run raised {_exc(exc)}."]
    if type(loaded) is not type(model):
        a, b = type(loaded), type(model)
        if a.__qualname__ == b.__qualname__:
            return [
                f"the plugin module was imported twice, as '{a.__module__}' (registered with "
                f"aelab) and '{b.__module__}' (where this spec comes from), so load_run built "
                f"the other copy's {a.__qualname__}; install the plugin as a package, or check "
                f"the registered spec: aelab.plugins.get_model('{spec.id}')."
            ]
        from .plugins import get_models

        holder = getattr(get_models().get(spec.id), "plugin", "?")
        return [
            f"load_run built a {a.__name__}, not a {b.__name__}: the id '{spec.id}' is "
            f"registered by plugin '{holder}'; give this model an id of its own."
        ]
    from .layout import contiguous_copy

    # Like with like: a loaded run takes the device's memory layout, whose kernels round
    # differently from plain weights' (1e-8), which is no change of the weights.
    model, loaded = contiguous_copy(model), contiguous_copy(loaded.eval())
    problems = []
    for g_old, g_new in zip(model.graphs(), loaded.graphs()):
        x = _graph_input(g_old)
        try:
            with torch.no_grad():
                pairs = list(
                    zip(g_old.output_names, _outputs(g_old.module(x)), _outputs(g_new.module(x)))
                )
        except Exception as exc:  # noqa: BLE001 - check_graphs says more
            problems.append(f"graph '{g_old.name}' raised {_exc(exc)} after save/load.")
            continue
        for name, a, b in pairs:
            if not torch.equal(a, b):
                diff = float((a - b).abs().max())
                problems.append(
                    f"graph '{g_old.name}' output '{name}' changed after save/load (max "
                    f"difference {diff:.3g}); keep every weight in a registered parameter or "
                    "buffer."
                )
    return problems


def check_roundtrip(spec: ModelSpec, data: Any, tmp_path: str | os.PathLike) -> None:
    """A model saved with save_run and loaded with load_run gives identical graph outputs (a
    spec no installed plugin registers is made known to the host for the check)."""
    model, problems = _step_problems(spec, data, None)
    if model is not None:
        problems += _roundtrip_problems(spec, data, tmp_path, model)
    _raise(spec, problems)


# -- everything at once --------------------------------------------------------------------


def conformance_report(
    spec: ModelSpec,
    data: Any,
    tmp_path: str | os.PathLike | None = None,
    params: dict[str, Any] | None = None,
) -> list[str]:
    """Every finding of every check, as sentences (empty when the spec conforms); the
    save/load round trip runs when ``tmp_path`` is given."""
    problems = spec_problems(spec)
    if not isinstance(spec, ModelSpec):
        return problems
    model, found = _step_problems(spec, data, params)
    problems += found
    if model is None:
        return problems
    problems += _graph_problems(spec, data, model)[1]
    if tmp_path is not None:
        problems += _roundtrip_problems(spec, data, tmp_path, model)
    return problems


def check_all(
    spec: ModelSpec,
    data: Any,
    tmp_path: str | os.PathLike | None = None,
    params: dict[str, Any] | None = None,
) -> None:
    """Run the whole kit and raise one AssertionError listing every finding."""
    _raise(spec, conformance_report(spec, data, tmp_path, params))
