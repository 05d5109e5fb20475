"""Causal tracing (Meng et al., 2022): which MLP layer carries a subject's fact to the output?

For each fact context: run the model clean, then with Gaussian noise added to the subject's
token embeddings (the corrupted run: the model no longer knows who is meant), then once per
layer with the corrupted input but that layer's MLP output at the edit position restored to
its clean value. The indirect effect of the layer is how much of the value's probability the
restoration brings back: ``p(restored_l) − p(corrupted)``. The layer with the largest mean
effect is where the fact is read out at that position, and so where to edit it.

Shapes: contexts of ``T`` tokens, hidden size ``d``; noise is ``(T_subject, d)`` per context.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch

from forget.errors import InvalidInputError
from forget.methods._rome_model import Context
from forget.models.arch import decoder_layers, mlp_out


@dataclass(frozen=True)
class TracePoint:
    """One context: ``ids`` (with <s>), the subject's token positions ``[start, end)``, the edit
    position ``at`` and the value token ``target`` predicted there."""

    ids: list[int]
    subject: tuple[int, int]
    at: int
    target: int


@dataclass
class TraceResult:
    """Mean probabilities of the value token and each layer's mean indirect effect."""

    p_clean: float
    p_corrupted: float
    effects: list[float]  # per layer: mean p(restored) - p(corrupted)

    @property
    def best_layer(self) -> int:
        return max(range(len(self.effects)), key=lambda i: self.effects[i])

    def to_dict(self) -> dict:
        return {"p_clean": round(self.p_clean, 4), "p_corrupted": round(self.p_corrupted, 4),
                "indirect_effects": [round(e, 4) for e in self.effects],
                "layer": self.best_layer}


@contextlib.contextmanager
def _hook(module: torch.nn.Module, fn) -> Iterator[None]:
    h = module.register_forward_hook(fn)
    try:
        yield
    finally:
        h.remove()


def _prob(model, ids: torch.Tensor, at: int, target: int) -> float:
    logits = model(input_ids=ids).logits[0, at]  # (V,)
    return float(torch.softmax(logits.float(), -1)[target])


def _recorder(store: dict[int, torch.Tensor], i: int):
    def hook(m, a, o):
        store[i] = o.detach()
    return hook


def _adder(s0: int, s1: int, noise: torch.Tensor):
    def hook(m, a, o):
        o = o.clone()
        o[0, s0:s1] += noise.to(o.dtype)
        return o
    return hook


def _restorer(at: int, clean: torch.Tensor):
    def hook(m, a, o):
        # one sequence: (1, T, d), or (T, d) where the layer flattens the batch (OPT)
        o = o.clone()
        o.view(1, -1, o.shape[-1])[0, at] = clean.view(1, -1, o.shape[-1])[0, at]
        return o
    return hook


def _trace_one(model, pt: TracePoint, sigma: float, samples: int, gen: torch.Generator
               ) -> tuple[float, float, list[float]]:
    """(p clean, mean p corrupted, mean effect per layer) for one context."""
    n_layers, emb = len(decoder_layers(model, "rome")), model.get_input_embeddings()
    # Each layer's MLP output is its output matrix's output (arch.mlp_out): hooking it is
    # hooking the MLP, in every supported layout (OPT's layers have no ``mlp`` module).
    mlps = [mlp_out(model, i, "rome") for i in range(n_layers)]
    ids = torch.tensor([pt.ids])
    clean: dict[int, torch.Tensor] = {}
    with contextlib.ExitStack() as st:
        for i in range(n_layers):
            st.enter_context(_hook(mlps[i], _recorder(clean, i)))
        p_clean = _prob(model, ids, pt.at, pt.target)
    p_cor_sum, effects = 0.0, [0.0] * n_layers
    for _ in range(samples):
        noise = torch.randn((pt.subject[1] - pt.subject[0], emb.embedding_dim),
                            generator=gen) * sigma
        with _hook(emb, _adder(pt.subject[0], pt.subject[1], noise)):
            p_cor = _prob(model, ids, pt.at, pt.target)
            for i in range(n_layers):
                with _hook(mlps[i], _restorer(pt.at, clean[i])):
                    effects[i] += _prob(model, ids, pt.at, pt.target) - p_cor
        p_cor_sum += p_cor
    return p_clean, p_cor_sum / samples, [e / samples for e in effects]


@torch.no_grad()
def trace_layers(model, points: Sequence[TracePoint], *, noise_scale: float = 3.0,
                 samples: int = 4, seed: int = 0) -> TraceResult:
    """Mean indirect effect of restoring each layer's MLP output at each point's edit position.

    ``noise_scale`` is in units of the standard deviation of the embedding matrix (ROME uses
    3); ``samples`` noise draws are averaged per context.
    """
    if not points:
        raise InvalidInputError("causal tracing needs at least one fact context")
    sigma = noise_scale * float(model.get_input_embeddings().weight.std())
    gen = torch.Generator().manual_seed(seed)
    runs = [_trace_one(model, pt, sigma, samples, gen) for pt in points]
    n = len(runs)
    effects = [sum(r[2][i] for r in runs) / n for i in range(len(runs[0][2]))]
    return TraceResult(sum(r[0] for r in runs) / n, sum(r[1] for r in runs) / n, effects)


def trace_point(ctx: Context) -> TracePoint:
    """A trace point for an edit context (its ``target_ids[0]``: the value token there)."""
    if not ctx.target_ids or ctx.subject_tokens[1] <= ctx.subject_tokens[0]:
        raise InvalidInputError("a trace point needs the subject's tokens and the value token")
    return TracePoint(ctx.ids, ctx.subject_tokens, ctx.subject_idx, ctx.target_ids[0])
