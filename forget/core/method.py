"""The method interface: ``Method``, its ``MethodConfig`` and the ``UnlearnResult`` it returns.

A method is a class registered once, in its own module, in ``METHODS``. It takes the model to
unlearn, its tokenizer, the forget and retain sets and its config, and returns a new model
(the model it was given is never modified) with what was done and what it guarantees.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import types
import typing
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from forget.errors import InvalidInputError, UnknownMethodError
from forget.registry import Registry

if TYPE_CHECKING:
    from forget.core.data import ForgetSet, RetainSet

EMPIRICAL = ("empirical, confirmed by audit: no formal bound; the audit (extraction, membership "
             "inference, exposure) is the evidence that the data no longer influences outputs")
EXACT = ("exact: the model was retrained from scratch on data without the subject's records, "
         "so it is the model that would exist had the data never been collected")


@dataclass
class MethodConfig:
    """Base of every method's config. Subclasses add fields with documented defaults.

    Attributes:
        max_steps: the most optimiser steps; training stops earlier once the forget criterion
            holds.
        seed: seeds data order and initialisation.
    """

    max_steps: int = 200
    seed: int = 0

    def __post_init__(self) -> None:
        if self.max_steps < 0:
            raise InvalidInputError(f"max_steps must be >= 0, got {self.max_steps}")

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict of every field (tuples become lists)."""
        return json.loads(json.dumps(dataclasses.asdict(self)))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MethodConfig:
        """Build a config from ``to_dict`` output; unknown keys are refused by name."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise InvalidInputError(
                f"{cls.__name__} has no field(s) {', '.join(unknown)}; known: {', '.join(sorted(names))}"
            )
        hints = typing.get_type_hints(cls)
        return cls(**{k: _coerce(hints.get(k), v) for k, v in data.items()})

    def config_hash(self) -> str:
        """sha256 of the canonical JSON of the class name and fields (what the card records)."""
        body = json.dumps({"config": type(self).__name__, **self.to_dict()}, sort_keys=True,
                          separators=(",", ":"))
        return hashlib.sha256(body.encode()).hexdigest()


def _coerce(hint: Any, value: Any) -> Any:
    """JSON gives lists where a field is a tuple; give the tuple back so configs compare equal."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(hint):
            if typing.get_origin(arg) is tuple and isinstance(value, list):
                return tuple(value)
    if origin is tuple and isinstance(value, list):
        return tuple(value)
    return value


@dataclass
class UnlearnResult:
    """What a method returns.

    Attributes:
        model: the new model (a plain ``PreTrainedModel``, ready to save or audit).
        method: the registered name of the method.
        steps: optimiser steps taken (retraining: all its steps).
        tokens_processed: tokens that went through a training forward pass (forget + retain).
        wall_time_s: seconds from start to the returned model.
        config: the config as a dict; ``config_hash`` its hash.
        guarantee: the guarantee in plain language.
        formal_guarantee: for DP / certified methods, e.g. ``{"epsilon": 8, "delta": 1e-5,
            "order": 4}`` and the parameters it was computed from (numbers; ``kind`` and
            ``applies_to`` are words); ``None`` for empirical ones.
        adapter: for adapter methods kept unmerged, the model with its adapters (peft).
        save_extra: files saved beside the model, a callable given the (temporary) model
            directory before its hash is taken (noisy_gd: the certified head).
        stopped_by: ``criterion`` (the forget criterion held), ``max_steps`` or ``already``
            (it held before any step).
        history: per-check records (step, losses, criterion values); no personal data.
        trained_record_ids: for methods that train a new model (retraining), the ids of the
            records it was trained on; ``None`` when the model keeps its parent's training.
    """

    model: Any
    method: str
    steps: int
    tokens_processed: int
    wall_time_s: float
    config: dict[str, Any]
    config_hash: str
    guarantee: str
    formal_guarantee: dict[str, Any] | None = None
    adapter: Any = None
    save_extra: Callable[[Path], None] | None = None
    stopped_by: str = "max_steps"
    history: list[dict[str, Any]] = field(default_factory=list)
    trained_record_ids: list[str] | None = None

    def summary(self) -> dict[str, Any]:
        """The JSON-able part (everything but the model objects)."""
        return {k: getattr(self, k) for k in (
            "method", "steps", "tokens_processed", "wall_time_s", "config", "config_hash",
            "guarantee", "formal_guarantee", "stopped_by")}


class Method(ABC):
    """An unlearning method. Subclasses set ``name``, ``config_class`` and ``guarantee``;
    ``modality`` says what model it takes (``text``: a causal LM and its tokenizer;
    ``diffusion``: a text-to-image pipeline)."""

    name: ClassVar[str]
    modality: ClassVar[str] = "text"
    config_class: ClassVar[type[MethodConfig]] = MethodConfig
    guarantee: ClassVar[str] = EMPIRICAL
    # Audit settings a method's result must be audited with (``AuditConfig`` field -> value),
    # e.g. model editing needs the paraphrase probe. The workflow applies them.
    audit_requirements: ClassVar[dict[str, Any]] = {}

    @abstractmethod
    def run(self, *, model: Any, tokenizer: Any, forget: ForgetSet, retain: RetainSet,
            config: MethodConfig | None = None) -> UnlearnResult:
        """Unlearn ``forget`` from ``model``; the given model is left unchanged."""

    def check_config(self, config: MethodConfig | None) -> MethodConfig:
        """``config`` or the default; refuses a config of another method."""
        if config is None:
            return self.config_class()
        if not isinstance(config, self.config_class):
            raise InvalidInputError(
                f"method {self.name!r} takes a {self.config_class.__name__}, "
                f"got a {type(config).__name__}"
            )
        return config


METHODS: Registry[type[Method]] = Registry("unlearning method", Method, error=UnknownMethodError)


def get_method(name: str) -> Method:
    """An instance of the method registered as ``name`` (did-you-mean on a typo)."""
    import forget.methods  # noqa: F401  (registers every method)

    return METHODS.get(name)()


def resolve_method(method: str | MethodConfig) -> tuple[str, dict[str, Any]]:
    """The method name and config overrides that ``method`` stands for.

    A registered name (or ``auto``) gives ``(name, {})``. A config object (as peft takes a
    ``LoraConfig``) gives the one method registered with exactly that config class and the
    fields that differ from the class's defaults, as ``MethodConfig.to_dict`` writes them, so
    ``config_class.from_dict(config_class().to_dict() | overrides) == config``.
    """
    import forget.methods  # noqa: F401  (registers every method)

    if isinstance(method, str):
        if method != "auto":
            METHODS.get(method)  # an unknown name: did-you-mean
        return method, {}
    if not isinstance(method, MethodConfig):
        raise InvalidInputError(
            f"method must be a registered name, 'auto' or a MethodConfig, got a "
            f"{type(method).__name__}")
    cls = type(method)
    names = [n for n in METHODS.names() if METHODS.get(n).config_class is cls]
    if not names:
        takes = ", ".join(f"{n}: {METHODS.get(n).config_class.__name__}" for n in METHODS.names())
        raise UnknownMethodError(
            f"no registered method takes a {cls.__name__}; pass one of their configs ({takes})")
    if len(names) > 1:
        raise InvalidInputError(
            f"{cls.__name__} is the config of several methods ({', '.join(names)}); pass the "
            "method name and the fields to change instead")
    defaults = cls().to_dict()
    return names[0], {k: v for k, v in method.to_dict().items() if defaults.get(k) != v}
