"""``rome``: suppress a subject's facts by rank-one edits of one MLP output matrix (ROME).

A fact is "<subject>'s <attribute> is <value>", read from the subject's records: every
identifier span of the configured kinds that follows the subject's name. For each fact, one
after another on the already edited model (each update is rank one, all in the same matrix):

1. Layer: ``layer``, or the one causal tracing picks (largest indirect effect on the value).
2. Key ``k*``: the down-projection input at the edit position, averaged over the fact's prompts
   behind ``prefixes`` random prefixes sampled from the model. The position is where the value
   is recalled: after the prompt and the value's uninformative lead tokens (``position=value``,
   the default), the subject's last token (``subject``, ROME's choice) or the prompt's last
   token (``last``). On the 2-layer tiny model the subject's last token cannot reach the output
   (measured: the fact stays), hence the default; see the README.
3. ``C``: second moment of keys over corpus positions (cached per model and layer), plus the
   keys where other people's values are stated the same way (``neighbour_weight``), so
   ``C⁻¹k*`` avoids them.
4. ``v* = W k* + δ``: ``δ`` optimised (``max_steps`` steps) with the rank-one edit in the loop so
   the model says ``target`` instead of the value, with a KL term on "<subject> is a", a KL
   term on the neighbours and the norm clamp ``clamp · ‖W k*‖``.
5. ``ΔW = (v* − W k*)(C⁻¹k*)ᵀ / ((C⁻¹k*)ᵀ k*)``.

The facts of one subject share the subject, not the key: each kind is recalled at its own
position, so each gets its own rank-one update (one update for all of them was measured to
miss most of them).
"""

from __future__ import annotations

import copy
import random
import time
from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from forget.core.data import PEOPLE_KINDS, ForgetSet, RetainSet
from forget.core.method import METHODS, Method, MethodConfig, UnlearnResult
from forget.errors import InvalidInputError, NothingToEditError
from forget.methods import _rome_math as RM
from forget.methods import _rome_model as MD
from forget.methods._causal_trace import trace_layers, trace_point
from forget.methods._rome_cov import key_covariance
from forget.methods._rome_eval import produced
from forget.methods._rome_value import ValueSpec, optimise_delta
from forget.models.arch import ensure_pad_token, weight_out_in

POSITIONS = ("value", "subject", "last")
MODES = ("rank_one", "subject")
GUARANTEE = (
    "empirical, suppression only: a rank-one edit of one MLP matrix per fact stops the model "
    "from stating the subject's facts from the prompts tested; the association is hidden, not "
    "removed. Paraphrases, other languages, other decoding and white-box probes may recover it "
    "(Patil et al., ICLR 2024), so the audit's paraphrase probe runs for every edit, and "
    "membership inference, exposure and relearning decide whether the data is gone")


@dataclass
class RomeConfig(MethodConfig):
    """ROME suppression. Defaults measured on the tiny and demo models (README, ``rome``).

    Attributes:
        max_steps: optimisation steps of ``δ`` per fact.
        kinds: identifier kinds whose facts are suppressed.
        layer: the MLP layer to edit; ``None`` chooses it by causal tracing.
        position: where the key is read: ``value``, ``subject`` or ``last`` (module doc).
        mode: ``rank_one`` (the edit itself in the optimisation loop) or ``subject`` (ROME's:
            ``δ`` added at the edit position only).
        target: the neutral continuation the edited model is pushed to.
        prefixes: random prefixes the key and ``δ`` are averaged over (plus the bare prompt).
        learning_rate: Adam step size for ``δ``.
        clamp: ``‖δ‖ <= clamp · ‖W k*‖``. Smaller keeps other subjects' facts (locality).
        kl_weight: KL on the next token after "<subject> is a".
        locality_weight: KL on other people's facts stated the same way.
        suppress_weight: unlikelihood of the value's first informative token.
        weight_decay: ``‖δ‖²`` penalty.
        cov_keys: corpus positions the covariance is estimated on.
        ridge: ridge of ``C`` relative to its mean eigenvalue.
        neighbours: at most this many other people's facts stated the same way.
        neighbour_weight: weight of their keys' second moment added to ``C``.
    """

    max_steps: int = 40
    kinds: tuple[str, ...] = PEOPLE_KINDS
    layer: int | None = None
    position: str = "value"
    mode: str = "rank_one"
    target: str = " unknown"
    prefixes: int = 10
    learning_rate: float = 0.5
    clamp: float = 2.0
    kl_weight: float = 1.0
    locality_weight: float = 10.0
    suppress_weight: float = 5.0
    weight_decay: float = 1e-3
    cov_keys: int = 20000
    ridge: float = 1e-3
    neighbours: int = 64
    neighbour_weight: float = 1.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.position not in POSITIONS:
            raise InvalidInputError(f"position must be one of {', '.join(POSITIONS)}, "
                                    f"got {self.position!r}")
        if self.mode not in MODES:
            raise InvalidInputError(f"mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        if self.max_steps < 1 or self.clamp <= 0 or self.learning_rate <= 0:
            raise InvalidInputError("max_steps must be >= 1, clamp and learning_rate > 0")
        if not self.kinds:
            raise InvalidInputError("kinds is empty: name at least one identifier kind to edit")
        if self.layer is not None and self.layer < 0:
            raise InvalidInputError(f"layer must be >= 0 or None (causal tracing), got {self.layer}")
        if min(self.kl_weight, self.locality_weight, self.suppress_weight, self.weight_decay,
               self.neighbour_weight, self.ridge) < 0 or self.cov_keys < 1:
            raise InvalidInputError("weights and ridge must be >= 0 and cov_keys >= 1")


def _contexts(tok, prefixes: list[str], fact: MD.Fact, cfg: RomeConfig, target: str | None):
    if cfg.position == "value":
        return [MD.value_context(tok, p, fact, target) for p in prefixes]
    value = fact.prompt.target if target is None else target
    ctxs = [MD.encode(tok, p, fact, value, position=cfg.position) for p in prefixes]
    return ctxs if target is None else [MD.Context(c.ids, c.subject_idx, c.target_ids[:1],
                                                   c.subject_tokens) for c in ctxs]


class Rome(Method):
    """Rank-one model editing of a subject's facts (suppression)."""

    name = "rome"
    config_class = RomeConfig
    guarantee = GUARANTEE
    # The audit's paraphrase probe must run for every edit (the workflow enforces it).
    audit_requirements: ClassVar[dict[str, Any]] = {"paraphrase": True}

    def run(self, *, model: Any, tokenizer: Any, forget: ForgetSet, retain: RetainSet,
            config: MethodConfig | None = None) -> UnlearnResult:
        cfg: RomeConfig = self.check_config(config)  # type: ignore[assignment]
        ensure_pad_token(tokenizer)
        t0 = time.perf_counter()
        tok = tokenizer
        facts = MD.facts_of([e for e in forget.examples if e.source == "people"], cfg.kinds)
        groups: dict[tuple[str, str], list[MD.Fact]] = {}
        for f in facts:
            groups.setdefault((f.prompt.kind, f.prompt.target), []).append(f)
        if not groups:
            raise NothingToEditError(
                f"no record of the forget set states a fact of kind(s) {', '.join(cfg.kinds)} "
                "after the subject's name, so rome has nothing to edit; use a gradient method "
                "(e.g. npo) or set RomeConfig(kinds=...)")
        edited = copy.deepcopy(model).eval()
        prefixes = [""] + MD.random_prefixes(model, tok, cfg.prefixes, seed=cfg.seed)
        history: list[dict] = []
        layer, trace = cfg.layer, None
        if layer is None:
            points = [trace_point(c) for fs in groups.values() for f in fs
                      for c in _contexts(tok, [""], f, cfg, None)]
            trace = trace_layers(model, points, seed=cfg.seed)
            layer = trace.best_layer
            history.append({"event": "causal_trace"} | trace.to_dict())
        proj = MD.down_proj(edited, layer)
        neighbours = MD.neighbour_contexts(tok, facts, retain.texts(), limit=cfg.neighbours)
        cov = key_covariance(model, tok, layer, retain.texts(), max_keys=cfg.cov_keys,
                             ridge=cfg.ridge, seed=cfg.seed)
        if neighbours and cfg.neighbour_weight:
            nk = MD.keys_at_targets(model, tok, layer, neighbours)
            cov = cov + cfg.neighbour_weight * (nk.T @ nk / nk.shape[0])
        spec = ValueSpec(mode=cfg.mode, steps=cfg.max_steps, lr=cfg.learning_rate,
                         kl_weight=cfg.kl_weight, locality_weight=cfg.locality_weight,
                         weight_decay=cfg.weight_decay, clamp=cfg.clamp,
                         suppress_weight=cfg.suppress_weight)
        tokens = 0
        for n, ((kind, _), fs) in enumerate(groups.items()):
            subject = fs[0].subject
            edit = [c for f in fs for c in _contexts(tok, prefixes, f, cfg, cfg.target)]
            value = [c for f in fs for c in _contexts(tok, prefixes, f, cfg, None)]
            essence = [MD.encode(tok, p, MD.Fact(MD.Prompt(subject + " is a", "", "essence"),
                                                 subject, len(subject)), position="last")
                       for p in prefixes[:5]]
            k_star = RM.mean_key(MD.keys_at(edited, tok, layer, edit))
            u = RM.update_direction(cov, k_star)
            w = weight_out_in(proj).detach()  # (d, m) whatever the module's layout
            base = float((w.double() @ k_star).norm())
            delta, steps = optimise_delta(edited, tok, layer, edit=edit, suppress=value,
                                          essence=essence, locality=neighbours, base_norm=base,
                                          spec=spec, u=u, denom=float(u @ k_star), seed=cfg.seed)
            v_star = w.double() @ k_star + delta
            with torch.no_grad():
                weight_out_in(proj).add_(RM.rank_one_update(w, cov, k_star, v_star))
            ctx_tokens = sum(len(c.ids) + len(c.target_ids) for c in edit + value + essence
                             + neighbours)
            tokens += ctx_tokens * len(steps)
            history.append({"event": "fact_edited", "fact": n, "kind": kind, "layer": layer,
                            "contexts": len(edit), "k_star_norm": round(float(k_star.norm()), 4),
                            "delta_norm": round(float(delta.norm()), 4),
                            "steps": len(steps)} | {k: v for k, v in steps[-1].items()
                                                    if k != "step"})
        history.append(self._scores(model, edited, tok, facts, retain, cfg.seed))
        for p in edited.parameters():
            p.requires_grad_(True)
        return UnlearnResult(
            model=edited, method=self.name, steps=len(groups) * cfg.max_steps,
            tokens_processed=tokens, wall_time_s=time.perf_counter() - t0,
            config=cfg.to_dict(), config_hash=cfg.config_hash(),
            guarantee=self.guarantee, stopped_by="max_steps", history=history)

    @staticmethod
    def _scores(model, edited, tok, facts, retain: RetainSet, seed: int) -> dict:
        """Reliability and generalisation on the subject's prompts, locality (token agreement)
        on a sample of the retain texts: counts and rates only."""
        from forget.methods._rome_eval import token_agreement

        prompts = [f.prompt for f in facts]
        paras = [f.prompt for f in MD.paraphrase_facts(facts)]
        texts = random.Random(seed).sample(retain.texts(), min(64, len(retain.texts())))
        after, para = produced(edited, tok, prompts), produced(edited, tok, paras)
        return {"event": "scores", "reliability": 1 - sum(after) / len(after),
                "generalisation": 1 - sum(para) / len(para) if para else None,
                "locality_retain_token": token_agreement(model, edited, tok, texts),
                "edit_prompts": len(prompts), "paraphrase_prompts": len(paras)}


METHODS.register("rome", Rome)
