"""``retrain``: train a fresh model from scratch on the retain set (the exact gold standard).

The retain set built by ``subject_sets`` is the original training set without the subject's
records (repeats included), and the tokenizer was trained with every identifier removed, so
the result is the model that would exist had the subject's data never been collected. It is
also the cost reference every other method is measured against.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

from forget.core.data import ForgetSet, RetainSet
from forget.core.method import EXACT, METHODS, Method, MethodConfig, UnlearnResult
from forget.corpus.load import TrainingRecord
from forget.errors import InvalidInputError, UnsupportedArchitectureError
from forget.models.train import ARCHS, SIZES, ModelSize, config_dims, get_size, train_lm


@dataclass
class RetrainConfig(MethodConfig):
    """Retraining from scratch.

    Attributes:
        max_steps: not used (retraining runs the size's whole schedule); kept for the
            common interface.
        size: the model size (``tiny``/``demo``); ``None`` infers it from the model's config.
        epochs: ``None`` uses the size's schedule.
    """

    max_steps: int = 0
    size: str | None = None
    epochs: int | None = None


def infer_size(model: Any) -> str:
    """The named size whose architecture matches ``model``'s config (any of ``ARCHS``:
    retraining rebuilds the same architecture, ``infer_arch``)."""
    kind, hidden, layers, inter = config_dims(model.config)
    for name, s in SIZES.items():
        if kind in ARCHS and (s.hidden, s.layers, s.intermediate) == (hidden, layers, inter):
            return name
    raise InvalidInputError(
        f"the {kind or 'given'} model matches no known size; pass RetrainConfig(size=...) "
        f"with one of {', '.join(SIZES)} (architectures: {', '.join(ARCHS)})")


def infer_arch(model: Any, method: str = "retrain") -> str:
    """The architecture ``train_lm`` rebuilds for ``model`` (its ``config.model_type``)."""
    kind = getattr(model.config, "model_type", "")
    if kind not in ARCHS:
        raise UnsupportedArchitectureError(
            f"{method} cannot rebuild a {kind!r} model from scratch: the suite builds "
            f"{', '.join(ARCHS)}; retrain it from its recorded recipe or choose another method")
    return kind


class Retrain(Method):
    """Exact unlearning by retraining without the forget set."""

    name = "retrain"
    config_class = RetrainConfig
    guarantee = EXACT

    def run(self, *, model: Any, tokenizer: Any, forget: ForgetSet, retain: RetainSet,
            config: MethodConfig | None = None) -> UnlearnResult:
        cfg = self.check_config(config)
        t0 = time.perf_counter()
        arch = infer_arch(model)
        size_name = cfg.size or infer_size(model)
        spec: ModelSize = get_size(size_name)
        forget_ids = {e.record_id for e in forget.examples}
        records = [TrainingRecord(e.record_id, e.text, e.source) for e in retain.examples
                   if e.record_id not in forget_ids]
        new = train_lm(records, tokenizer, spec, seed=cfg.seed, progress=False,
                       epochs=cfg.epochs, arch=arch)
        epochs = cfg.epochs or spec.epochs
        lengths = [len(ids) + 1 for ids in tokenizer([r.text for r in records])["input_ids"]]
        return UnlearnResult(
            model=new, method=self.name,
            steps=math.ceil(len(records) / spec.batch_size) * epochs,
            tokens_processed=sum(lengths) * epochs, wall_time_s=time.perf_counter() - t0,
            config=cfg.to_dict() | {"resolved_size": size_name}, config_hash=cfg.config_hash(),
            guarantee=self.guarantee, stopped_by="max_steps",
            trained_record_ids=sorted({r.record_id for r in records}))


METHODS.register("retrain", Retrain)
