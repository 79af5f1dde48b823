"""The model contract: a ModelSpec a plugin registers, and the Model base class every model extends."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from .errors import ParamsError
from .params import Params, TrainConfig, validate

CAPABILITIES = ("encode", "decode", "reconstruct", "sample")


@dataclass
class GraphSpec:
    """One exportable graph: a module mapping one input to named outputs."""

    name: str  # autoencoder, encoder, decoder, generator, discriminator
    module: nn.Module
    input_name: str  # input, code, noise
    input_shape: tuple[int, ...]  # per-sample shape; the batch axis is added by the exporter
    output_names: list[str]
    input_range: tuple[float, float] | None = (0.0, 1.0)  # None: unbounded (codes, noise)
    # For an unbounded input that is not simply N(0, I), what it holds (recorded in the export;
    # the runtime then refuses to fill it with noise).
    input_note: str | None = None


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


class Model(nn.Module):
    """Base of every aelab model; its verbs map one-to-one onto the lab's actions.

    A model declares its optimizers (``configure_optimizers``) and a ``training_step`` per
    optimizer that returns named loss terms; the trainer steps them in order and never needs
    to know what kind of model it is.
    """

    capabilities: frozenset[str] = frozenset({"encode", "decode", "reconstruct"})
    steps: tuple[str, ...] = ("model",)  # optimizer names, in the order their steps run
    # True: the trainer passes each batch's labels as ``training_step(x, name, y=labels)``.
    needs_labels: bool = False
    # Training steps (batches) taken before the current one; the trainer sets it before each
    # step and it carries on across resumed runs, so schedules (e.g. a KL warm-up) can read it.
    global_step: int = 0

    def __init__(self, params: Params, sample_shape: tuple[int, ...]):
        super().__init__()
        self.params = params
        self.sample_shape = tuple(sample_shape)

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

    # -- training --------------------------------------------------------------------------
    def configure_optimizers(self, config: TrainConfig) -> dict[str, torch.optim.Optimizer]:
        """Optimizers by name, in the order their training steps run."""
        return {"model": make_optimizer(config, self.parameters())}

    def training_step(self, x: torch.Tensor, optimizer: str) -> dict[str, torch.Tensor]:
        """Loss terms for one optimizer on a batch; key ``loss`` is what gets minimised."""
        raise NotImplementedError

    def validation_step(self, x: torch.Tensor, **batch: torch.Tensor) -> dict[str, torch.Tensor]:
        """Loss terms on held-out data (called in eval mode without gradients); ``batch`` holds
        ``y`` for models that need labels."""
        terms: dict[str, torch.Tensor] = {}
        total = 0.0
        for name in self.steps:
            out = self.training_step(x, name, **batch)
            total = total + out["loss"]
            terms.update({k: v for k, v in out.items() if k != "loss"})
        terms["total"] = total
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
                    "decoder", _Verb(self, "decode"), "code", self.code_shape, ["output"], None
                )
            )
        return out


class _Verb(nn.Module):
    """Wraps one verb of a model as a module with a plain ``forward`` for export."""

    def __init__(self, model: Model, verb: str):
        super().__init__()
        self.model = model
        self.verb = verb

    def forward(self, x: torch.Tensor) -> Any:
        return getattr(self.model, self.verb)(x)


@dataclass
class ModelSpec:
    """What a plugin registers: a model's identity, its hyperparameters and how it builds itself."""

    id: str
    name: str
    description: str
    params: type[Params]
    factory: Callable[[Params, tuple[int, ...]], Model]
    accepts: tuple[str, ...] = ("flat", "image")
    help: str = ""  # longer markdown: how it works, its loss, what it is good for
    plugin: str = field(default="", compare=False)

    @property
    def capabilities(self) -> list[str]:
        """Verbs the built model supports."""
        caps = getattr(self.factory, "capabilities", frozenset())
        return [c for c in CAPABILITIES if c in caps]

    def validate_params(self, values: dict[str, Any] | Params | None = None) -> Params:
        """Validate hyperparameters against this model's schema."""
        if isinstance(values, self.params):
            return values
        if isinstance(values, Params):
            values = values.model_dump()
        return validate(self.params, dict(values or {}), f"parameters for {self.id}")

    def build(
        self, params: dict[str, Any] | Params | None, sample_shape: tuple[int, ...], kind: str
    ) -> Model:
        """Validate params, check the data kind, and build the model for this data shape."""
        if kind not in self.accepts:
            wanted = " or ".join(self.accepts)
            raise ParamsError(
                f"Model '{self.id}' needs {wanted} data, but this dataset is {kind} data."
            )
        params = self.validate_params(params)
        return self.factory(params, tuple(sample_shape))

    def schema(self) -> dict[str, Any]:
        """JSON schema of the hyperparameters (what the UI and the CLI are built from)."""
        return self.params.model_json_schema()

    def to_json(self) -> dict[str, Any]:
        """Description used by ``aelab models --json``."""
        return {
            "id": self.id,
            "name": self.name,
            "plugin": self.plugin,
            "description": self.description,
            "accepts": list(self.accepts),
            "capabilities": self.capabilities,
            "params": self.schema(),
        }
