"""The model contract: the Model base class every model extends (torch), and the ModelSpec a
plugin registers (defined torch-free in ``aelab.specs``, re-exported here)."""

from __future__ import annotations

import inspect
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from .params import Params, TrainConfig
from .roles import PRIORS, ROLE_BY_NAME, ROLES

# The spec and the names it is checked against are torch-free (aelab.specs); re-exported here,
# where plugins have always imported them from.
from .specs import CAPABILITIES, CODE_KINDS, METRICS, ModelSpec  # noqa: F401

# Per-sample fields a batch may carry, with the dtype the trainer gives them.
BATCH_DTYPES: dict[str, torch.dtype] = {"x": torch.float32, "y": torch.long}


@dataclass
class GraphSpec:
    """One exportable graph: a module mapping one input to named outputs."""

    name: str  # the file name: autoencoder, encoder, decoder, generator, discriminator, ...
    module: nn.Module
    input_name: str  # input, code, noise
    input_shape: tuple[int, ...]  # per-sample shape; the batch axis is added by the exporter
    output_names: list[str]
    input_range: tuple[float, float] | None = (0.0, 1.0)  # None: unbounded (codes, noise)
    # For an unbounded input that is not simply N(0, I), what it holds (recorded in the export;
    # the runtime then refuses to fill it with noise).
    input_note: str | None = None
    # What the graph does (one of ROLES); derived from the name when not given, so a graph
    # called "generator" is a sampler and "discriminator" a critic.
    role: str | None = None
    # The distribution its input may be drawn from to generate data ("normal": N(0, I)); None
    # when random inputs mean nothing (a plain autoencoder's decoder, an encoder).
    prior: str | None = None

    def __post_init__(self) -> None:
        if self.role is None:
            self.role = ROLE_BY_NAME.get(self.name, "other")
            if self.name == "generator" and self.prior is None and self.input_note is None:
                # A GAN plugin from before priors: its generator takes N(0, I) noise.
                self.prior = "normal"
        if self.role not in ROLES:
            raise ValueError(f"graph '{self.name}' has role {self.role!r}; roles are {ROLES}")
        if self.prior not in PRIORS:
            raise ValueError(f"graph '{self.name}' has prior {self.prior!r}; priors are {PRIORS}")


def _fused(params: list[torch.Tensor]) -> dict[str, bool]:
    """``fused=True`` where torch has a fused kernel for these tensors: the whole update in one
    kernel instead of a dozen or so separate ops. On CPU, Adam's step over the default
    autoencoder's 12 tensors drops from ~330 µs to ~95 µs (a quarter of a training step)."""
    devices = {p.device.type for p in params}
    ok = len(devices) == 1 and devices <= {"cpu", "cuda"}
    return {"fused": True} if ok and all(p.dtype.is_floating_point for p in params) else {}


def make_optimizer(
    config: TrainConfig, parameters: Any, lr: float | None = None
) -> torch.optim.Optimizer:
    """The optimizer named in the training settings, over these parameters (fused kernels where
    torch has them for the parameters' device; RMSprop has none)."""
    lr = config.lr if lr is None else lr
    params = [p for p in parameters if p.requires_grad]
    if config.optimizer == "adam":
        return torch.optim.Adam(params, lr=lr, **_fused(params))
    if config.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=lr, **_fused(params))
    if config.optimizer == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr)
    return torch.optim.SGD(params, lr=lr, momentum=0.9, **_fused(params))


_INIT_LOCK = threading.Lock()


def _legacy_signature(fn: Callable) -> bool:
    """Whether a step method still takes ``(x, ...)`` instead of a batch dict (the old contract)."""
    try:
        params = list(inspect.signature(fn).parameters)
    except (TypeError, ValueError):
        return False
    return len(params) >= 2 and params[1] == "x"


def _adapt_training_step(fn: Callable) -> Callable:
    def training_step(self: Model, batch: dict[str, torch.Tensor], optimizer: str) -> dict:
        extra = {k: v for k, v in batch.items() if k != "x"}
        return fn(self, batch["x"], optimizer, **extra)

    training_step.__doc__ = fn.__doc__
    return training_step


def _adapt_validation_step(fn: Callable) -> Callable:
    def validation_step(self: Model, batch: dict[str, torch.Tensor]) -> dict:
        extra = {k: v for k, v in batch.items() if k != "x"}
        return fn(self, batch["x"], **extra)

    validation_step.__doc__ = fn.__doc__
    return validation_step


class Model(nn.Module):
    """Base of every aelab model; its verbs map one-to-one onto the lab's actions.

    A model declares its optimizers (``configure_optimizers``) and a ``training_step`` per
    optimizer that takes a batch dict and returns named loss terms; the trainer steps them in
    order and never needs to know what kind of model it is. docs/plugins.md has the whole
    contract.
    """

    capabilities: frozenset[str] = frozenset({"encode", "decode", "reconstruct"})
    steps: tuple[str, ...] = ("model",)  # optimizer names, in the order their steps run
    # Fields every batch must carry (see BATCH_DTYPES): "x" the inputs, "y" the labels.
    batch_fields: tuple[str, ...] = ("x",)
    code_kind: str = "continuous"  # one of CODE_KINDS
    # Training steps (batches) taken before the current one; the trainer sets it before each
    # step and it carries on across resumed runs, so schedules (e.g. a KL warm-up) can read it.
    global_step: int = 0
    # The model's own random generator for training noise, seeded by the trainer; never torch's
    # global one, so two trainings in one process (two lab tabs) reproduce their seeds.
    rng: torch.Generator | None = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # Plugins written for the first contract (``training_step(x, optimizer, y=...)`` and
        # ``needs_labels = True``) keep working: adapt them once, here, and say so.
        if cls.__dict__.get("needs_labels") and "batch_fields" not in cls.__dict__:
            cls.batch_fields = ("x", "y")
        for name, adapt in (
            ("training_step", _adapt_training_step),
            ("validation_step", _adapt_validation_step),
        ):
            fn = cls.__dict__.get(name)
            if fn is not None and _legacy_signature(fn):
                warnings.warn(
                    f"{cls.__qualname__}.{name} takes (x, ...); aelab now passes a batch dict "
                    "({'x': ..., 'y': ...}). It is adapted for now; see docs/plugins.md.",
                    DeprecationWarning,
                    stacklevel=2,
                )
                setattr(cls, name, adapt(fn))

    def __init__(self, params: Params, sample_shape: tuple[int, ...]):
        super().__init__()
        self.params = params
        self.sample_shape = tuple(sample_shape)

    @property
    def needs_labels(self) -> bool:
        """Whether every batch must carry labels (``"y"`` in ``batch_fields``)."""
        return "y" in self.batch_fields

    # -- verbs -----------------------------------------------------------------------------
    @property
    def code_shape(self) -> tuple[int, ...]:
        """Shape of one code (what ``decode`` takes)."""
        return (self.params.code_size,)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Map inputs to codes."""
        raise NotImplementedError(f"{type(self).__name__} cannot encode")

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Map codes to outputs in the data's range."""
        raise NotImplementedError(f"{type(self).__name__} cannot decode")

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """Encode then decode (deterministically: no noise, the mean code for a VAE)."""
        return self.decode(self.encode(x))

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Draw ``n`` new samples from the model's prior."""
        raise NotImplementedError(f"{type(self).__name__} cannot sample")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.reconstruct(x)

    # -- randomness ------------------------------------------------------------------------
    def seed_rng(self, seed: int, device: torch.device | str | None = None) -> None:
        """Give the model its own generator for training noise, on ``device``."""
        device = torch.device(device) if device is not None else self._param_device()
        self.rng = torch.Generator(device=device)
        self.rng.manual_seed(int(seed))

    def _param_device(self) -> torch.device:
        for p in self.parameters():
            return p.device
        return torch.device("cpu")

    def generator_for(self, device: torch.device) -> torch.Generator | None:
        """The model's generator on ``device`` (following the model if it moved); None when
        the model was never seeded, which falls back to torch's global generator."""
        g = self.rng
        if g is None or g.device == device:
            return g
        moved = torch.Generator(device=device)
        moved.manual_seed(g.initial_seed())
        self.rng = moved
        return moved

    def _noise(self, draw: Any, shape: tuple[int, ...], like: torch.Tensor) -> torch.Tensor:
        """Noise from ``draw`` (torch.randn or torch.rand) by the model's generator. Training in
        several processes (``_share`` = (rank, world size), set by the trainer for the length
        of the training), each rank draws the global batch's noise, the same on every rank, and
        keeps its own rows: the noise of a one-process run of the same global batch."""
        g = self.generator_for(like.device)
        share = self.__dict__.get("_share")
        if share is None or not shape:
            return draw(shape, generator=g, dtype=like.dtype, device=like.device)
        rank, world = share
        full = draw(
            (shape[0] * world, *shape[1:]), generator=g, dtype=like.dtype, device=like.device
        )
        return full[rank::world].contiguous()

    def randn_like(self, t: torch.Tensor) -> torch.Tensor:
        """N(0, 1) noise shaped like ``t``, from the model's own generator."""
        return self._noise(torch.randn, tuple(t.shape), t)

    def rand_like(self, t: torch.Tensor) -> torch.Tensor:
        """U[0, 1) noise shaped like ``t``, from the model's own generator."""
        return self._noise(torch.rand, tuple(t.shape), t)

    def randn(self, *shape: int, like: torch.Tensor) -> torch.Tensor:
        """N(0, 1) noise of ``shape`` on ``like``'s device and dtype, from the model's generator."""
        return self._noise(torch.randn, tuple(shape), like)

    # -- training --------------------------------------------------------------------------
    def configure_optimizers(self, config: TrainConfig) -> dict[str, torch.optim.Optimizer]:
        """Optimizers by name, in the order their training steps run."""
        return {"model": make_optimizer(config, self.parameters())}

    def learning_rates(self, config: TrainConfig) -> dict[str, float]:
        """The learning rate each optimizer trains at under ``config``, by optimizer name: what
        the lab and the CLI should show. Read from ``configure_optimizers``, so a model that sets
        its own rates (a GAN's two) reports those, not the training setting it ignores."""
        try:
            optimizers = self.configure_optimizers(config)
        except (ValueError, RuntimeError):  # no trainable parameters: nothing is stepped
            return {name: config.lr for name in self.steps}
        rates: dict[str, float] = {}
        for name, opt in optimizers.items():
            lrs = [float(group["lr"]) for group in opt.param_groups]
            if len(set(lrs)) == 1:
                rates[name] = lrs[0]
            else:
                rates.update({f"{name} (group {i})": lr for i, lr in enumerate(lrs)})
        return rates

    def training_step(self, batch: dict[str, torch.Tensor], optimizer: str) -> dict[str, Any]:
        """Loss terms for one optimizer on a batch (``batch["x"]``, plus the fields named in
        ``batch_fields``); key ``loss`` is what gets minimised, other tensors are its named
        terms, and an optional ``"metrics"`` dict holds figures that are not losses."""
        raise NotImplementedError

    def validation_step(self, batch: dict[str, torch.Tensor]) -> dict[str, Any]:
        """Loss terms on held-out data (called in eval mode without gradients). By default every
        step's terms, their ``total`` (the sum of the steps' losses) and their metrics."""
        terms: dict[str, Any] = {}
        metrics: dict[str, Any] = {}
        total = 0.0
        for name in self.steps:
            out = dict(self.training_step(batch, name))
            metrics.update(out.pop(METRICS, None) or {})
            total = total + out.pop("loss")
            terms.update(out)
        terms["total"] = total
        if metrics:
            terms[METRICS] = metrics
        return terms

    # -- export ----------------------------------------------------------------------------
    def graphs(self) -> list[GraphSpec]:
        """The graphs this model can export, built from its own modules."""
        out = []
        if "reconstruct" in self.capabilities:
            out.append(
                GraphSpec(
                    "autoencoder",
                    _Verb(self, "reconstruct"),
                    "input",
                    self.sample_shape,
                    ["reconstruction"],
                )
            )
        if "encode" in self.capabilities:
            out.append(
                GraphSpec("encoder", _Verb(self, "encode"), "input", self.sample_shape, ["code"])
            )
        if "decode" in self.capabilities:
            out.append(
                GraphSpec(
                    "decoder",
                    _Verb(self, "decode"),
                    "code",
                    self.code_shape,
                    ["output"],
                    None,
                    # Decoding N(0, I) codes generates data only where training fit a prior.
                    prior="normal" if "sample" in self.capabilities else None,
                )
            )
        return out


def describe_learning_rates(rates: dict[str, float], shared: float | None = None) -> str:
    """``learning rate 0.001`` for one optimizer, ``learning rates: discriminator 0.001,
    generator 0.001`` for several; noting it when none is the training setting ``shared``."""
    if len(rates) == 1:
        text = f"learning rate {next(iter(rates.values())):g}"
    else:
        text = "learning rates: " + ", ".join(f"{n} {lr:g}" for n, lr in rates.items())
    if shared is not None and rates and shared not in rates.values():
        text += f" (the model's own; the training setting {shared:g} is not used)"
    return text


def build_seeded(
    spec: ModelSpec,
    params: dict[str, Any] | Params | None,
    sample_shape: tuple[int, ...],
    kind: str,
    seed: int,
) -> Model:
    """Build a model whose initial weights depend on ``seed`` alone, and seed its generator.

    Layers draw their initial weights from torch's global generator; building under a lock
    with that generator seeded, then restored, keeps two builds in two threads (two lab tabs)
    from drawing from each other's stream.
    """
    with _INIT_LOCK, torch.random.fork_rng(devices=[]):
        torch.random.default_generator.manual_seed(int(seed))
        model = spec.build(params, sample_shape, kind)
    model.seed_rng(seed)
    return model


class _Verb(nn.Module):
    """Wraps one verb of a model as a module with a plain ``forward`` for export."""

    def __init__(self, model: Model, verb: str):
        super().__init__()
        self.model = model
        self.verb = verb

    def forward(self, x: torch.Tensor) -> Any:
        return getattr(self.model, self.verb)(x)
