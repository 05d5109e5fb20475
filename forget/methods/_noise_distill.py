"""What the noise-and-distil methods share: blend weights with noise, then distil.

``blend_with_noise`` is UNDO's perturbation (Lee et al. 2025): ``θ <- (1-α) θ + α β N`` where
``N`` is a freshly initialised copy of the same architecture (the noise has the scale and
structure of an initialisation, as when distilling into a new network). ``distil`` trains the
noised student to match a teacher's next-token distributions on the retain texts (KL(teacher ‖
student), through the same ``UnlearnTrainer`` as every gradient method).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from forget.core import losses as L
from forget.core.data import Example
from forget.core.trainer import (
    TokenizedExamples,
    TrainOutcome,
    TrainSpec,
    lm_logits,
    run_unlearning,
)
from forget.errors import InvalidInputError


@torch.no_grad()
def blend_with_noise(model: torch.nn.Module, alpha: float, beta: float, seed: int,
                     select: Callable[[str, torch.nn.Parameter], bool] | None = None) -> list[str]:
    """In place: ``p <- (1-alpha) p + alpha * beta * fresh`` for each selected parameter.

    ``fresh`` is the parameter of a newly initialised model of the same config (seeded), so
    embeddings, projections and norms each get noise of their own initialisation's scale.
    Returns the names of the parameters changed (names only, never values).
    """
    if not 0.0 <= alpha <= 1.0 or beta < 0:
        raise InvalidInputError(f"noise needs 0 <= alpha <= 1 and beta >= 0, got {alpha}, {beta}")
    state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        fresh = type(model)(model.config)  # HF models initialise their weights in __init__
    finally:
        torch.random.set_rng_state(state)
    fresh_params = dict(fresh.named_parameters())
    changed = []
    for name, p in model.named_parameters():
        if name not in fresh_params or (select is not None and not select(name, p)):
            continue
        p.mul_(1.0 - alpha).add_(fresh_params[name].to(p.device, p.dtype), alpha=alpha * beta)
        changed.append(name)
    return changed


class DistilLoss:
    """KL(teacher ‖ student) of next-token distributions on a batch of retain texts.

    The trainer pairs each item as ``forget`` (here: the retain texts, the only stream) and
    passes the teacher as ``ref_model``.
    """

    def __call__(self, model: torch.nn.Module, batch: dict, ref_model: torch.nn.Module | None
                 ) -> tuple[torch.Tensor, dict[str, float]]:
        if ref_model is None:
            raise InvalidInputError("distillation needs the teacher as reference model")
        b = batch["forget"]
        with torch.no_grad():
            teacher = lm_logits(ref_model, b)
        kl = L.kl_to_reference(lm_logits(model, b), teacher, b["labels"])
        return kl, {"kl_distil": float(kl.detach())}


def distil(student: torch.nn.Module, teacher: torch.nn.Module, tokenizer: object,
           texts: Sequence[Example], *, steps: int, learning_rate: float, batch_size: int,
           seed: int) -> TrainOutcome:
    """Train ``student`` in place for ``steps`` steps towards ``teacher`` on ``texts``.

    No early stop: the step budget is the method's price and robustness knob.
    """
    if not texts:
        raise InvalidInputError("distillation needs retain texts: the retain set is empty")
    data = TokenizedExamples(list(texts), tokenizer)
    return run_unlearning(student, tokenizer, data, None, DistilLoss(),
                          TrainSpec(steps, learning_rate, batch_size, check_every=1, seed=seed),
                          ref_model=teacher)
