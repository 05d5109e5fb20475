"""The audit of a certified-head deletion (``noisy_gd``): the theorem's conditions, re-checked.

The language-model audit (extraction, MIA, exposure) says nothing about a classification head,
and the frozen LM is the same before and after, so for a head model the workflow checks instead
what the certificate rests on, from the files alone:

1. the frozen LM was never trained on the deleted records (its card's training record ids);
   otherwise the head's certificate would hide that the LM still holds them;
2. the deleted records are no longer among the head's training records;
3. the LM is the one the head's features came from (state-dict hash);
4. the recorded hyper-parameters satisfy the bound's assumptions (η <= 1/L, clip >= √2);
5. the deletion's epsilon, recomputed from the recorded parameters with the pure bound, is
   the recorded one and at most the target.

As evidence (not part of the verdict): a loss-based membership test on the head, the deleted
records against held-out ones (AUC), for the original head and the new one.
"""

from __future__ import annotations

import hashlib
import html
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CHECKS_VERSION = "certified-head-audit/1"


@dataclass
class HeadAuditReport:
    verdict: str
    checks: list[dict[str, Any]]
    evidence: dict[str, Any]
    formal_guarantee: dict[str, Any]
    guarantee: str

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "certified_head", "verdict": self.verdict, "checks": self.checks,
                "evidence": self.evidence, "formal_guarantee": self.formal_guarantee,
                "guarantee": self.guarantee, "config_hash": hashlib.sha256(
                    CHECKS_VERSION.encode()).hexdigest()}

    def save(self, directory: Path) -> None:
        """``report.json`` and a short ``report.html`` (no identifier: ids, counts, numbers)."""
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        data = self.to_dict()
        (d / "report.json").write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
        rows = "".join(
            f"<tr><td>{html.escape(c['name'])}</td><td>{'yes' if c['passed'] else 'NO'}</td>"
            f"<td>{html.escape(str(c['value']))}</td><td>{html.escape(c['why'])}</td></tr>"
            for c in self.checks)
        ev = html.escape(json.dumps(self.evidence, sort_keys=True))
        (d / "report.html").write_text(
            "<!doctype html><meta charset='utf-8'><title>Certified head deletion</title>"
            f"<h1>Certified deletion from a classification head: {html.escape(self.verdict)}</h1>"
            f"<p>{html.escape(self.guarantee)}</p><table border=1><tr><th>check</th>"
            f"<th>passed</th><th>value</th><th>why it matters</th></tr>{rows}</table>"
            f"<h2>Evidence (not part of the verdict)</h2><pre>{ev}</pre>\n")


def _check(name: str, passed: bool, value: Any, why: str) -> dict[str, Any]:
    return {"name": name, "passed": bool(passed), "value": value, "why": why}


def _membership_auc(state, trained_labels: dict[str, int], model, tok, forget) -> float | None:
    """AUC of "lower head loss = member": the deleted records vs held-out records.

    ``trained_labels``: the original head's record labels (the deleted records are among them).
    """
    import torch

    from audits.metrics import auc
    from forget.methods._certified_head import lm_features, per_example_loss

    members = [e for e in forget.examples if e.record_id in trained_labels]
    label = {c: i for i, c in enumerate(state.classes)}
    holdout = [e for e in forget.holdout if e.source in label]
    if not members or not holdout:
        return None
    ys = [trained_labels[e.record_id] for e in members] + [label[e.source] for e in holdout]
    x, _ = lm_features(model, tok, [e.text for e in members + holdout])
    loss = per_example_loss(state.theta, x, torch.tensor(ys)).tolist()
    k = len(members)
    return float(auc([-v for v in loss[:k]], [-v for v in loss[k:]]))


def head_audit(new_dir: Path, original_dir: Path, forget) -> HeadAuditReport:
    """Re-check a certified head deletion from its files (see the module docstring)."""
    from forget.core.certified import check_assumptions, deletion_rdp
    from forget.errors import InvalidInputError
    from forget.methods._certified_head import HeadState
    from forget.models import load_model, read_card
    from forget.models.io import state_dict_sha256

    card = read_card(new_dir)
    new, old = HeadState.load(new_dir), HeadState.load(original_dir)
    formal = card.get("formal_guarantee") or {}
    forget_ids = {e.record_id for e in forget.examples}
    lm_overlap = len(forget_ids & set(card.get("training_record_ids", [])))
    still_in = len(forget_ids & set(new.record_ids))
    model, tok = load_model(new_dir)
    try:
        check_assumptions(eta=new.eta, lam=new.lam, clip=new.clip)
        assumptions = "hold"
    except InvalidInputError as exc:
        assumptions = str(exc)
    last = new.deletions[-1] if new.deletions else {}
    eps = None
    if last:
        eps = deletion_rdp(last["deletion_steps"], alpha=last["order"], eta=new.eta,
                           n=len(old.record_ids), s=last["removed"], lipschitz=new.clip,
                           sigma=new.sigma, m=new.lam) if last["removed"] else 0.0
    target = formal.get("target_epsilon")
    eps_ok = (eps is not None and target is not None and eps <= target
              and math.isclose(eps, formal.get("epsilon", -1.0), rel_tol=1e-9, abs_tol=1e-12))
    checks = [
        _check("lm_never_trained_on_records", lm_overlap == 0, lm_overlap,
               "the certificate covers the head only; the frozen LM must never have seen the "
               "records, else it still holds them (use dp_retrain or retrain for the LM)"),
        _check("records_removed_from_head", still_in == 0, still_in,
               "the deleted records are no longer in the head's training set"),
        _check("features_from_same_lm", state_dict_sha256(model) == new.lm_state_sha256,
               new.lm_state_sha256[:16], "the head's features come from this frozen LM"),
        _check("bound_assumptions", assumptions == "hold", assumptions,
               "eta <= 1/L and clipping at or above the loss's Lipschitz constant"),
        _check("epsilon_recomputed", eps_ok, eps,
               "the Renyi epsilon recomputed from the recorded parameters equals the recorded "
               "one and is at most the target"),
    ]
    evidence = {"membership_auc_original_head": _membership_auc(old, old.labels, model, tok, forget),
                "membership_auc_new_head": _membership_auc(new, old.labels, model, tok, forget),
                "note": "loss-based membership AUC of the deleted records vs held-out records "
                        "(0.5 = no signal); small samples, so evidence only"}
    verdict = "pass" if all(c["passed"] for c in checks) else "fail"
    return HeadAuditReport(verdict, checks, evidence, formal, card.get("guarantee", ""))
