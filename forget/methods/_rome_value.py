"""v*: the value the edited layer must give the subject's key, found by optimisation.

A vector ``δ`` (``(d,)``) is added to the layer's output and optimised so the model continues
the subject's fact prompts with a neutral target; ``v* = W k* + δ``. Two ways to add it:

- ``subject`` (ROME's): ``δ`` is added only at the subject's last token of the edit prompts.
- ``rank_one`` (the edit itself in the loop): every position's output gets
  ``gain(k) · δ`` with ``gain(k) = uᵀk / uᵀk*``, exactly what the rank-one update will do.
  Other subjects' prompts then feel the edit during the optimisation, so a KL term on them
  (``locality_weight``) can steer ``δ`` to a direction that leaves their facts alone.

The loss: NLL of the neutral target + ``kl_weight`` · KL(original ‖ edited) of the next token
after "<subject> is a" (the subject's other knowledge) + ``locality_weight`` · the same KL on
other subjects' value tokens + ``weight_decay`` · ‖δ‖²; ``‖δ‖`` is clamped to
``clamp`` · ‖W k*‖ after every step.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from forget.methods._rome_math import clamp_norm
from forget.methods._rome_model import Context, down_proj, pad
from forget.models.arch import out_features, pad_token_id


@dataclass(frozen=True)
class ValueSpec:
    """Settings of the optimisation (see the module doc)."""

    mode: str = "rank_one"
    steps: int = 40
    lr: float = 0.5
    kl_weight: float = 1.0
    locality_weight: float = 1.0
    weight_decay: float = 1e-3
    clamp: float = 4.0
    target_weight: float = 1.0
    suppress_weight: float = 1.0


@contextlib.contextmanager
def add_delta(proj: torch.nn.Module, delta: torch.Tensor, *, rows: torch.Tensor | None = None,
              cols: torch.Tensor | None = None, u: torch.Tensor | None = None,
              denom: float = 1.0) -> Iterator[None]:
    """Add ``δ`` to ``proj``'s output ``(B, T, d)``: at ``(rows, cols)``, or everywhere scaled by
    ``uᵀk / denom`` when ``u`` is given."""

    def hook(mod, args, out):
        if u is not None:
            gain = (args[0].double() @ u / denom).to(out.dtype)  # (B, T)
            return out + gain.unsqueeze(-1) * delta.to(out.dtype)
        out = out.clone()
        view = out.view(len(rows), -1, out.shape[-1])  # (B, T, d), also from OPT's (B*T, d)
        view[rows, cols] = view[rows, cols] + delta.to(out.dtype)
        return out

    h = proj.register_forward_hook(hook)
    try:
        yield
    finally:
        h.remove()


def _logits(model, batch: tuple[torch.Tensor, torch.Tensor, torch.Tensor]) -> torch.Tensor:
    ids, mask, _ = batch
    return model(input_ids=ids, attention_mask=mask).logits  # (B, T, V)


def _target_logprobs(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean log-probability of the labelled tokens (position t predicts t + 1)."""
    lp = F.log_softmax(logits[:, :-1].float(), -1)
    lab = labels[:, 1:]
    keep = lab != -100
    got = lp.gather(-1, lab.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    return (got * keep).sum() / keep.sum().clamp(min=1)


def _unlikelihood(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean ``-log(1 - p)`` of the labelled tokens: pushes each value token's probability down."""
    lp = F.log_softmax(logits[:, :-1].float(), -1)
    lab = labels[:, 1:]
    keep = lab != -100
    got = lp.gather(-1, lab.clamp(min=0).unsqueeze(-1)).squeeze(-1).clamp(max=-1e-6)
    return -(torch.log1p(-got.exp()) * keep).sum() / keep.sum().clamp(min=1)


def _last_logprobs(logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    last = mask.sum(1) - 1
    return F.log_softmax(logits[torch.arange(len(last)), last].float(), -1)  # (B, V)


def _value_positions_logprobs(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    pos = labels[:, 1:] != -100
    return F.log_softmax(logits[:, :-1][pos].float(), -1)  # (n, V)


def optimise_delta(model, tokenizer, layer: int, *, edit: Sequence[Context],
                   suppress: Sequence[Context], essence: Sequence[Context], locality: Sequence[Context], base_norm: float,
                   spec: ValueSpec, u: torch.Tensor | None = None, denom: float = 1.0,
                   seed: int = 0) -> tuple[torch.Tensor, list[dict]]:
    """``δ`` (``(d,)``) and the loss history. ``edit`` contexts carry the neutral target's ids,
    ``locality`` ones the other subjects' values; ``u``/``denom`` are needed in ``rank_one``."""
    proj = down_proj(model, layer)
    pad_id = pad_token_id(tokenizer)
    eb = pad(edit, pad_id, with_target=True)
    vb = pad(suppress, pad_id, with_target=True) if suppress else None
    sb = pad(essence, pad_id, with_target=False)
    lb = pad(locality, pad_id, with_target=True) if locality and spec.mode == "rank_one" else None
    for p in model.parameters():
        p.requires_grad_(False)
    with torch.no_grad():
        ref_s = _last_logprobs(_logits(model, sb), sb[1])
        ref_l = _value_positions_logprobs(_logits(model, lb), lb[2]) if lb is not None else None
    g = torch.Generator().manual_seed(seed)
    delta = (torch.randn(out_features(proj), generator=g) * 1e-3).requires_grad_(True)
    opt = torch.optim.Adam([delta], lr=spec.lr)
    max_norm = spec.clamp * base_norm
    history: list[dict] = []

    def hooked(ctxs: Sequence[Context]):
        if spec.mode == "rank_one":
            return add_delta(proj, delta, u=u, denom=denom)
        rows = torch.arange(len(ctxs))
        cols = torch.tensor([c.subject_idx for c in ctxs])
        return add_delta(proj, delta, rows=rows, cols=cols)

    for step in range(spec.steps):
        with hooked(edit):
            target = -_target_logprobs(_logits(model, eb), eb[2])
        sup = torch.zeros(())
        if vb is not None and spec.suppress_weight:
            with hooked(suppress):
                sup = _unlikelihood(_logits(model, vb), vb[2])
        with hooked(essence):
            kl = F.kl_div(_last_logprobs(_logits(model, sb), sb[1]), ref_s, log_target=True,
                          reduction="batchmean")
        loc = torch.zeros(())
        if lb is not None:
            with hooked(locality):
                loc = F.kl_div(_value_positions_logprobs(_logits(model, lb), lb[2]), ref_l,
                               log_target=True, reduction="batchmean")
        loss = spec.target_weight * target + spec.suppress_weight * sup + spec.kl_weight * kl + spec.locality_weight * loc + \
            spec.weight_decay * delta.pow(2).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
        with torch.no_grad():
            delta.copy_(clamp_norm(delta, max_norm))
        history.append({"step": step + 1, "target_nll": round(float(target.detach()), 4),
                        "value_unlikelihood": round(float(sup.detach()), 4),
                        "kl": round(float(kl.detach()), 5), "locality_kl": round(float(loc.detach()), 5),
                        "delta_norm": round(float(delta.detach().norm()), 4)})
    return delta.detach().double(), history
