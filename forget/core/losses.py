"""Unlearning losses as pure functions of logits, labels and masks.

Shapes: ``logits`` (B, T, V) and ``labels`` (B, T) as a causal LM gets them (position t
predicts token t+1, so every function shifts by one); ``-100`` in ``labels`` marks padding and
any other position that must not count. A ``mask`` (B, T), where given, selects label
positions further (for example the tokens of a secret). Every mean is over selected positions
only: padded positions never enter a numerator or a denominator.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
import torch.nn.functional as F

from forget.errors import InvalidInputError

IGNORE = -100


def shift(logits: torch.Tensor, labels: torch.Tensor,
          mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Align logits with next-token labels: ``(B, T-1, V)``, ``(B, T-1)`` and a bool mask."""
    logits = logits[:, :-1, :]
    labels = labels[:, 1:]
    keep = labels != IGNORE
    if mask is not None:
        keep = keep & mask[:, 1:].bool()
    return logits, labels, keep


def selected_count(labels: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """How many next-token positions ``shift`` selects (a 0-d integer tensor)."""
    keep = labels[:, 1:] != IGNORE
    if mask is not None:
        keep = keep & mask[:, 1:].bool()
    return keep.sum()


def token_logprobs(logits: torch.Tensor, labels: torch.Tensor,
                   mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """log p(label_t | < t) per position, (B, T-1), zero where not selected; and the mask."""
    lg, lb, keep = shift(logits, labels, mask)
    logp = torch.log_softmax(lg.float(), dim=-1)
    picked = logp.gather(-1, lb.clamp_min(0).unsqueeze(-1)).squeeze(-1)  # (B, T-1)
    return picked * keep, keep


def sequence_logprob(logits: torch.Tensor, labels: torch.Tensor,
                     mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Summed log-likelihood of each sequence's selected tokens (B,) and their counts (B,)."""
    picked, keep = token_logprobs(logits, labels, mask)
    return picked.sum(-1), keep.sum(-1)


def masked_ce(logits: torch.Tensor, labels: torch.Tensor,
              mask: torch.Tensor | None = None) -> torch.Tensor:
    """Cross-entropy averaged over selected tokens of the whole batch (0 if none is selected)."""
    picked, keep = token_logprobs(logits, labels, mask)
    return -picked.sum() / keep.sum().clamp_min(1)


def nll_loss(logits: torch.Tensor, labels: torch.Tensor,
             mask: torch.Tensor | None = None) -> torch.Tensor:
    """Retain NLL: ordinary next-token cross-entropy (gradient descent)."""
    return masked_ce(logits, labels, mask)


def gradient_ascent_loss(logits: torch.Tensor, labels: torch.Tensor,
                         mask: torch.Tensor | None = None) -> torch.Tensor:
    """Gradient ascent on the forget set: the negated NLL (minimising it raises the NLL)."""
    return -masked_ce(logits, labels, mask)


def npo_loss(logp: torch.Tensor, ref_logp: torch.Tensor, beta: float) -> torch.Tensor:
    """NPO (Zhang et al. 2024): mean of ``-(2/β) log σ(-β (log πθ(y|x) - log πref(y|x)))``.

    Args:
        logp: summed log-likelihood of each forget sequence under the model, (B,).
        ref_logp: the same under the frozen reference model, (B,).
        beta: inverse temperature (> 0); as β -> 0 the gradient approaches gradient ascent's.
    """
    _check_beta(beta)
    return (-(2.0 / beta) * F.logsigmoid(-beta * (logp - ref_logp))).mean()


def simnpo_loss(logp: torch.Tensor, lengths: torch.Tensor, beta: float,
                gamma: float = 0.0) -> torch.Tensor:
    """SimNPO (Fan et al. 2024): reference-free, length-normalised NPO with margin γ.

    Mean of ``-(2/β) log σ(-(β/|y|) log πθ(y|x) - γ)``; ``lengths`` are |y| per sequence (B,).
    """
    _check_beta(beta)
    norm = logp / lengths.clamp_min(1).to(logp.dtype)
    return (-(2.0 / beta) * F.logsigmoid(-beta * norm - gamma)).mean()


def kl_to_reference(logits: torch.Tensor, ref_logits: torch.Tensor, labels: torch.Tensor,
                    mask: torch.Tensor | None = None) -> torch.Tensor:
    """KL(πref ‖ πθ) of the next-token distributions, averaged over selected positions."""
    lg, _, keep = shift(logits, labels, mask)
    ref = ref_logits[:, :-1, :]
    logq = torch.log_softmax(lg.float(), dim=-1)
    logp = torch.log_softmax(ref.float(), dim=-1)
    kl = (logp.exp() * (logp - logq)).sum(-1)  # (B, T-1)
    return (kl * keep).sum() / keep.sum().clamp_min(1)


def group_lasso(groups: Iterable[torch.Tensor]) -> torch.Tensor:
    """Group-sparse penalty Σ_g ‖θ_g‖₂ (pushes whole groups, e.g. LoRA modules, to zero)."""
    norms = [g.float().pow(2).sum().add(1e-12).sqrt() for g in groups]
    if not norms:
        return torch.zeros(())
    return torch.stack(norms).sum()


def memorization_accuracy(logits: torch.Tensor, labels: torch.Tensor,
                          mask: torch.Tensor | None = None) -> torch.Tensor:
    """Share of selected tokens that the model's argmax predicts exactly (teacher forcing)."""
    lg, lb, keep = shift(logits, labels, mask)
    hit = (lg.argmax(-1) == lb) & keep
    return hit.sum().float() / keep.sum().clamp_min(1)


def _check_beta(beta: float) -> None:
    if not beta > 0:
        raise InvalidInputError(f"beta must be positive, got {beta}")
