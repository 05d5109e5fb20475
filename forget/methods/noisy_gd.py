"""``noisy_gd``: certified deletion from a convex head over a frozen language model.

The certified part is a softmax-regression head on unit-norm, mean-pooled features of a frozen
LM (e.g. a "does this text mention a customer" classifier a team trains on user data over a
public LM), trained by full-batch noisy GD with L2 weight λ and clipping at M (see
:mod:`forget.methods._certified_head` for the files). Deleting records = continuing the same
noisy GD on the remaining records from the current head for ``K_U`` steps, ``K_U`` the fewest
steps for which the Langevin-unlearning bound (:mod:`forget.core.certified`) gives the target
(α, ε) Rényi deletion guarantee. The language model is never changed and not covered: the
workflow's audit refuses the deletion when the LM's card says it was trained on the records.

A head model is recognised by its files; ``run`` finds them through ``config.head_dir`` or the
directory the model was loaded from (``model.config._name_or_path``), which is what the
workflow passes.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from forget.core.certified import (
    BOUND_NAME,
    check_assumptions,
    deletion_rdp,
    deletion_steps,
    initial_divergence,
    rdp_to_dp,
)
from forget.core.data import ForgetSet, RetainSet
from forget.core.method import METHODS, Method, MethodConfig, UnlearnResult
from forget.errors import InvalidInputError, MalformedDataError
from forget.methods._certified_head import (
    HeadState,
    HeadTrainConfig,
    has_head,
    lm_features,
    noisy_gd,
    train_head,
)
from forget.models.io import state_dict_sha256


def guarantee_text(f: dict[str, Any]) -> str:
    """The guarantee in words, with its numbers, bound and limits (for the ledger and report)."""
    return (
        f"certified deletion for the classification head only: after {f['deletion_steps']} "
        f"noisy gradient steps on the remaining {f['n'] - f['removed']} records, the head's "
        f"parameters are ({f['order']:g}, {f['epsilon']:.4g})-Renyi indistinguishable from "
        f"retraining the head from scratch without the {f['removed']} deleted records "
        f"(equivalently ({f['epsilon_dp']:.4g}, {f['delta']:g})-indistinguishable). Bound used: "
        f"{BOUND_NAME}, eps(K, a) = exp(-K m eta / a) * 4 a S^2 M^2 / (m sigma^2 n^2) with m = "
        f"lambda = {f['lambda']:g}, eta = {f['eta']:.4g}, sigma = {f['sigma']:g}, M = "
        f"{f['clip']:.4g}, n = {f['n']}, S = {f['removed']}. Assumptions: softmax regression on "
        "unit-norm features (convex, M-Lipschitz with per-example clipping at M, 1/2-smooth), "
        "L2 weight lambda (lambda-strongly convex), full-batch noisy GD with eta <= 1/L, trained "
        "from zero by this suite. Limits: the frozen language model is not covered (it must "
        "never have been trained on the deleted records); the bound is on the head's "
        "parameters, not on copies of the data kept elsewhere"
        + (f"; this head had {f['earlier_deletions']} earlier deletion(s), and each bound assumes "
           "the head it starts from is distributed as noisy-GD training on the data before "
           "that deletion, which earlier deletions only approximate"
           if f["earlier_deletions"] else "")
        + ".")


@dataclass
class NoisyGDConfig(MethodConfig):
    """Certified deletion from a head.

    Attributes:
        max_steps: the most deletion steps allowed; a larger ``K_U`` is refused (retrain the
            head instead).
        alpha: the Rényi order q of the target guarantee (> 1).
        target_epsilon: the Rényi epsilon at order ``alpha`` the deletion must reach.
        delta: for the (epsilon, delta) conversion reported alongside.
        head_dir: the head model's directory; ``None`` uses the directory the model was loaded
            from.
        seed: seeds the deletion noise (combined with the number of earlier deletions).
    """

    max_steps: int = 100_000
    alpha: float = 2.0
    target_epsilon: float = 1.0
    delta: float = 1e-5
    head_dir: str | None = None


class NoisyGD(Method):
    """Certified (Rényi) deletion by noisy GD on a convex head; the LM is left as it is."""

    name = "noisy_gd"
    config_class = NoisyGDConfig
    guarantee = ("certified (q, epsilon) Renyi deletion for a convex head over a frozen LM; "
                 "the language model itself is not covered")

    def run(self, *, model: Any, tokenizer: Any, forget: ForgetSet, retain: RetainSet,
            config: MethodConfig | None = None) -> UnlearnResult:
        cfg = self.check_config(config)
        t0 = time.perf_counter()
        head_dir = Path(cfg.head_dir or getattr(model.config, "_name_or_path", "") or ".")
        state = HeadState.load(head_dir)
        check_assumptions(eta=state.eta, lam=state.lam, clip=state.clip)
        if state_dict_sha256(model) != state.lm_state_sha256:
            raise InvalidInputError(
                "the language model differs from the one the head was trained on (its state "
                "dict hash does not match certified_head.json); pass the head's own LM")
        forget_ids = {e.record_id for e in forget.examples}
        removed = [r for r in state.record_ids if r in forget_ids]
        remaining = [r for r in state.record_ids if r not in forget_ids]
        texts = {e.record_id: e.text for e in list(retain.examples) + list(forget.examples)}
        missing = [r for r in remaining if r not in texts]
        if missing:
            raise MalformedDataError(
                f"{len(missing)} of the head's {len(state.record_ids)} training records are in "
                "neither the forget nor the retain set; give the data the head was trained on")
        n, s = len(state.record_ids), len(removed)
        bound = {"alpha": cfg.alpha, "eta": state.eta, "n": n, "s": s, "lipschitz": state.clip,
                 "sigma": state.sigma, "m": state.lam}
        k = deletion_steps(target_epsilon=cfg.target_epsilon, **bound) if s else 0
        if k > cfg.max_steps:
            raise InvalidInputError(
                f"the certified deletion needs {k} steps, more than max_steps={cfg.max_steps}; "
                "raise max_steps, relax target_epsilon, or retrain the head without the records")
        x, tokens = lm_features(model, tokenizer, [texts[r] for r in remaining])
        y = torch.tensor([state.labels[r] for r in remaining], dtype=torch.long)
        seed = cfg.seed * 1_000_003 + state.seed + 7919 * (len(state.deletions) + 1)
        theta, clipped = noisy_gd(state.theta, x, y, steps=k, eta=state.eta, lam=state.lam,
                                  sigma=state.sigma, clip=state.clip,
                                  generator=torch.Generator().manual_seed(seed))
        eps = deletion_rdp(k, **bound) if s else 0.0
        formal = {
            "kind": "renyi_deletion", "applies_to": "head", "order": cfg.alpha,
            "epsilon": eps, "target_epsilon": cfg.target_epsilon, "delta": cfg.delta,
            "epsilon_dp": rdp_to_dp(eps, alpha=cfg.alpha, delta=cfg.delta),
            "initial_epsilon": initial_divergence(**{k_: v for k_, v in bound.items()
                                                     if k_ != "eta"}),
            "deletion_steps": k, "training_steps": state.train_steps, "removed": s, "n": n,
            "lambda": state.lam, "eta": state.eta, "sigma": state.sigma, "clip": state.clip,
            "clipped_gradients": clipped, "earlier_deletions": len(state.deletions),
            "deletion_seed": seed,
        }
        new = HeadState(**{**state.__dict__, "theta": theta, "record_ids": remaining,
                           "labels": {r: state.labels[r] for r in remaining},
                           "deletions": state.deletions + [{
                               "removed": s, "deletion_steps": k, "order": cfg.alpha,
                               "epsilon": eps, "seed": seed}]})
        return UnlearnResult(
            model=model, method=self.name, steps=k, tokens_processed=tokens,
            wall_time_s=time.perf_counter() - t0, config=cfg.to_dict(),
            config_hash=cfg.config_hash(), guarantee=guarantee_text(formal),
            formal_guarantee=formal, stopped_by="criterion", save_extra=new.save,
            history=[{"removed": s, "remaining": len(remaining), "deletion_steps": k,
                      "gradient_computations": k * len(remaining)}])


def build_head_model(lm_dir: Path | str, records: Sequence[tuple[str, str, str]],
                     out: Path | str, *, config: HeadTrainConfig | None = None,
                     registry: Path | str | None = None) -> Path:
    """Train a certified head on ``(record_id, text, label)`` over the LM in ``lm_dir``; save.

    ``out`` gets the LM (unchanged), its tokenizer, a card (kind ``certified_head``, parent the
    LM's version) and the head files; it is registered like any model version.
    """
    from forget.models import ModelRegistry, load_model, read_card, save_model
    from forget.models.registry import new_card

    cfg = config or HeadTrainConfig()
    check_assumptions(eta=cfg.resolved_eta(), lam=cfg.lam, clip=cfg.clip)
    ids = [r[0] for r in records]
    if len(set(ids)) != len(ids):
        raise InvalidInputError("record ids must be unique: train the head on distinct records")
    model, tok = load_model(lm_dir)
    classes = sorted({r[2] for r in records})
    labels = {rid: classes.index(lab) for rid, _, lab in records}
    x, _ = lm_features(model, tok, [r[1] for r in records])
    y = torch.tensor([labels[i] for i in ids], dtype=torch.long)
    theta, _ = train_head(x, y, len(classes), cfg)
    state = HeadState(theta=theta, classes=classes, record_ids=ids, labels=labels, lam=cfg.lam,
                      eta=cfg.resolved_eta(), sigma=cfg.sigma, clip=cfg.clip,
                      train_steps=cfg.steps, seed=cfg.seed,
                      lm_state_sha256=state_dict_sha256(model), n_trained=len(ids))
    parent = read_card(lm_dir)
    card = new_card(kind="certified_head", parent=parent["version"], size=parent.get("size"),
                    line=parent.get("line", parent["version"]),
                    training_record_ids=parent.get("training_record_ids", []),
                    head_record_ids=ids, data_sha256=parent.get("data_sha256", {}),
                    config={"head": cfg.__dict__ | {"eta": cfg.resolved_eta()}})
    save_model(model, tok, out, card=card, extra=state.save)
    ModelRegistry(registry).register(out)
    return Path(out)


def corpus_head_records(corpus: Any) -> list[tuple[str, str, str]]:
    """The corpus's distinct training records labelled by kind (people / code / canary)."""
    from forget.corpus.load import training_records

    seen: dict[str, tuple[str, str, str]] = {}
    for r in training_records(corpus):
        seen.setdefault(r.record_id, (r.record_id, r.text, r.source))
    return list(seen.values())


__all__ = ["NoisyGD", "NoisyGDConfig", "build_head_model", "corpus_head_records", "has_head"]

METHODS.register("noisy_gd", NoisyGD)
