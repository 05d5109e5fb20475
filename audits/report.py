"""``AuditReport``: the verdict and its evidence, as JSON (machines) and one HTML page (people).

The page starts with a plain-language answer for a legal reviewer, then the evidence table,
then each measure's limits; ROC curves and score histograms are embedded as base64 PNGs so the
file stands alone. The subject's identifiers appear only masked; :meth:`AuditReport.save`
refuses to write a report in which any of them appears in plain text.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import io
import json
from pathlib import Path
from typing import Any

from audits.config import AuditConfig
from audits.errors import AuditError
from audits.verdict import FAIL, PASS, Check, Verdict
from audits.wording import (  # the report's words; re-exported here
    FOOTNOTES,
    LIMITS,
    PLAIN,
    PLAIN_NAMES,
    QUESTION,
    QUESTION_SECRET,
    SECRET_KINDS,
)
from audits.wording import ROBUST_NAMES as _ROBUST

SCHEMA = "forget-suite/audit-report/1"
__all__ = ["FOOTNOTES", "LIMITS", "PLAIN", "PLAIN_NAMES", "QUESTION", "QUESTION_SECRET",
           "SCHEMA", "SECRET_KINDS", "AuditReport", "build_report", "plain_answer",
           "plain_name", "is_secret"]


def plain_name(name: str) -> str:
    """``mia:loss`` -> ``telling the records apart from look-alikes (loss)``."""
    head, _, tail = name.partition(":")
    base = PLAIN_NAMES.get(head, head)
    return f"{base} ({_ROBUST.get(tail, tail)})" if tail else base


def is_secret(kinds) -> bool:
    """A request whose identifiers all belong to no person (keys, passwords, tokens...)."""
    kinds = set(kinds)
    return bool(kinds) and kinds <= SECRET_KINDS


def _detail(c: Check) -> str:
    """Exact counts behind a character-ranking or completion finding."""
    rows, ev = c.evidence.get("ranks", []), c.evidence
    if c.name == "char_rank":
        over = "over-unlearning" in c.note
        k = "last" if over else "first"
        return (f"{k} at {sum(r[k] for r in rows)} of {sum(r['ranked'] for r in rows)} "
                "positions")
    n = ev.get("least_likely_recovered" if "over-unlearning" in c.note
               else "greedy_recovered", 0)
    return f"{n} of {ev.get('identifiers_tried', 0)} identifier(s)"


def _plain(c: Check, secret: bool) -> str:
    head = c.name.split(":")[0]
    tail = c.name.split(":")[1] if ":" in c.name else ""
    over = "over-unlearning" in c.note and head in ("mia", "exposure", "char_rank",
                                                    "least_likely", "per_person")
    words = {"its": "this secret's" if secret else "this person's",
             "it": "the secret" if secret else "the person"}
    detail = _detail(c) if head in ("char_rank", "least_likely") else ""
    return PLAIN[head + ("_over" if over else "")].format(
        v=c.value or 0.0, n=_ROBUST.get(tail, tail), detail=detail, **words)


def _count(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def plain_answer(v: Verdict, checks: list[Check], counts: dict, *, secret: bool = False) -> str:
    """The first paragraph of the report, for a reader who is not an ML engineer.

    ``counts``: exactly what was tested (prompts, identifiers and their kinds, ranked values,
    look-alikes, records and look-alike identities), so no number is a guess.
    """
    whose = "this secret" if secret else "this person's data"
    failed = [c for c in checks if c.name in v.failed]
    if v.verdict == FAIL:
        return (f"Yes. The model can still reveal {whose}: "
                + "; ".join(dict.fromkeys(_plain(c, secret) for c in failed))
                + ". The erasure is not complete.")
    if v.verdict == PASS:
        kinds = ", ".join(counts.get("kinds", [])) or "none"
        ranked = counts.get("ranked", 0)
        most = counts.get("lookalikes_max", counts.get("lookalikes", 0))
        among = (f"{counts.get('lookalikes', 0):,}" if most == counts.get("lookalikes", 0)
                 else f"{counts.get('lookalikes', 0):,} to {most:,}")
        chars = counts.get("char_ranked", 0)
        return (f"No evidence that it could. The model completed none of the "
                f"{_count(counts.get('prompts', 0), 'prompt')} that precede "
                f"{'the secret' if secret else 'this person' + chr(39) + 's identifiers'} "
                f"({kinds}) word for word"
                + (f"; it ranked {_count(ranked, 'true value')} among "
                   f"{among} made-up look-alikes each no higher and no "
                   "lower than chance" if ranked else "")
                + (f"; given the first characters of {_count(chars, 'identifier')}, neither "
                   "the most likely nor the least likely completion returned the rest, and "
                   "the true characters ranked as chance would" if chars else "")
                + (f"; compared with {counts['shadows']} models trained with and without "
                   f"{'it' if secret else 'them'}, {'its' if secret else 'their'} records "
                   "scored as the ones trained without" if counts.get("shadows") else "")
                + (f"; the same held after {counts['relearn_other_steps']} steps of "
                   f"fine-tuning on {counts['relearn_other_texts']:,} other texts"
                   if counts.get("relearn_other_steps") else "")
                + f"; and it told the {_count(counts.get('records', 0), 'record')} apart from "
                f"{counts.get('twin_identities', 0)} look-alike identities no better and no "
                "worse than " + ("a model retrained without them" if counts.get("measured")
                                 else "chance")
                + (f"; the {counts['neighbours']} "
                   f"{'person' if counts['neighbours'] == 1 else 'people'} closest to "
                   f"{'it' if secret else 'them'} "
                   f"{'was' if counts['neighbours'] == 1 else 'were'} no more exposed than before"
                   if counts.get("neighbours") else "")
                + ". The same tests found the data in the "
                "original model, so they were able to find it.")
    return ("We cannot say. " + v.reason.removeprefix("inconclusive: ").capitalize() + ".")


def answer_counts(target, plan_kinds: list[str], measured: bool) -> dict:
    """What was tested on the audited model, counted from its results."""
    ids = target.exposure.identifiers
    out = {"prompts": len(target.extraction.probes),
           "kinds": sorted(set(plan_kinds)),
           "ranked": len(ids),
           "lookalikes": target.exposure.fewest_alternatives,
           "lookalikes_max": max((i.candidates - 1 for i in ids),
                                 default=target.exposure.alternatives),
           "records": target.mia.n_members, "twin_identities": target.mia.copies or 0,
           "measured": measured}
    cr = target.char_rank
    if cr is not None and cr.identifiers:
        out |= {"char_ranked": len(cr.identifiers),
                "char_positions": sum(i.ranked for i in cr.identifiers),
                "char_given": sum(i.given for i in cr.identifiers),
                "char_free": sum(i.free for i in cr.identifiers)}
    if getattr(target, "neighbours", None) is not None and target.neighbours.neighbours:
        out["neighbours"] = len(target.neighbours.neighbours)
    other = next((c for c in target.robustness if c.name == "relearn_other"), None)
    if other is not None:
        out |= {"relearn_other_steps": other.detail["steps"],
                "relearn_other_texts": other.detail["texts"]}
    return out


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80, bbox_inches="tight")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def plots(models: dict[str, dict]) -> list[dict[str, str]]:
    """ROC curves (every attack, every model) and score histograms, as PNG data URIs."""
    from matplotlib.figure import Figure  # no pyplot: no global state, no GUI backend

    out = []
    roles = list(models)
    fig = Figure(figsize=(4.2 * len(roles), 3.8))
    axes = fig.subplots(1, len(roles), squeeze=False)[0]
    for ax, role in zip(axes, roles, strict=True):
        for name, a in models[role]["mia"]["attacks"].items():
            ax.step(a["roc_fpr"], a["roc_tpr"], where="post",
                    label=f"{name} AUC {a['auc']:.2f}")
        ax.plot([0, 1], [0, 1], ":", color="grey")
        ax.set(title=f"ROC, {role} model", xlabel="false positive rate",
               ylabel="true positive rate")
        ax.legend(fontsize=7, loc="lower right")
    out.append({"title": "ROC curves: the subject's records vs their twins", "src": _png(fig)})
    fig = Figure(figsize=(4.2 * len(roles), 3.4))
    axes = fig.subplots(1, len(roles), squeeze=False)[0]
    for ax, role in zip(axes, roles, strict=True):
        a = models[role]["mia"]["attacks"]["min_k_pp"]
        ax.hist(a["nonmember_scores"], bins=20, alpha=0.6, label="twins (non-members)")
        ax.hist(a["member_scores"], bins=20, alpha=0.6, label="subject's records")
        ax.set(title=f"Min-K%++ scores, {role} model", xlabel="score (higher = member)")
        ax.legend(fontsize=7)
    out.append({"title": "Score histograms (Min-K%++)", "src": _png(fig)})
    return out


@dataclasses.dataclass
class AuditReport:
    """The result of one audit. ``to_dict`` is the JSON schema ``SCHEMA``."""

    subject_id: str
    verdict: str  # pass | fail | inconclusive
    reason: str
    answer: str
    checks: list[Check]
    controls: dict[str, dict]
    models: dict[str, dict]
    identifiers: list[dict]
    config: dict
    config_hash: str
    seeds: dict
    limits: dict[str, str]
    created_at: str
    seconds: float
    versions: dict[str, str]
    question: str = QUESTION
    tested: dict = dataclasses.field(default_factory=dict)  # exact counts of what was tested
    # The audited model's weights hash as the caller stated it (the deletion certificate's),
    # None when not given. ``models["audited"]["model_sha256"]`` is the audit's own digest of
    # the in-memory parameters: another function of the same weights.
    model_sha256: str | None = None
    # The per-person attack (U-LiRA): ``{"ran": bool, "reason": ...}`` and, when it ran, its
    # shadows, per-record tests of the audited and original models and the calibration.
    strong: dict = dataclasses.field(default_factory=dict)
    schema: str = SCHEMA
    _secrets: list[tuple[str, str]] = dataclasses.field(default_factory=list, repr=False)

    @property
    def exit_code(self) -> int:
        """0 pass, 1 fail, 3 inconclusive (the command-line contract)."""
        return {PASS: 0, FAIL: 1}.get(self.verdict, 3)

    def to_dict(self) -> dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
             if not f.name.startswith("_")}
        d["checks"] = [dataclasses.asdict(c) for c in self.checks]
        return json.loads(json.dumps(d, default=_jsonable))

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    def to_html(self) -> str:
        import jinja2

        env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
            autoescape=True, undefined=jinja2.StrictUndefined)
        return env.get_template("report.html.j2").render(
            r=self.to_dict(), question=self.question, plots=plots(self.models),
            plain_name=plain_name, footnotes=FOOTNOTES)

    def leaks(self, text: str) -> list[str]:
        """Kinds of the subject's identifiers that appear in ``text`` in plain form."""
        return sorted({k for k, v in self._secrets if v and v in text})

    def save(self, out_dir: Path | str) -> tuple[Path, Path]:
        """Write ``report.json`` and ``report.html``; refuse if an identifier would leak."""
        out = Path(out_dir)
        js, html = self.to_json(), self.to_html()
        leaked = self.leaks(js) + self.leaks(html)
        if leaked:
            raise AuditError(f"refusing to write a report that contains the subject's "
                             f"{', '.join(sorted(set(leaked)))} in plain text")
        out.mkdir(parents=True, exist_ok=True)
        (out / "report.json").write_text(js + "\n")
        (out / "report.html").write_text(html)
        return out / "report.json", out / "report.html"


def _jsonable(o: Any) -> Any:
    if dataclasses.is_dataclass(o):
        return dataclasses.asdict(o)
    if hasattr(o, "tolist"):
        return o.tolist()
    if isinstance(o, tuple | set):
        return list(o)
    return str(o)


def _exposure_dict(d: dict, e) -> None:
    d.update(threshold=e.threshold, min_p=e.min_p, min_p_low=e.min_p_low, exposed=e.exposed,
             avoided=e.avoided, power=e.has_power)
    for i in d["identifiers"]:
        i.pop("scores", None)  # every candidate's score: kept for calibration, not reported
        i["z"] = round(i.get("z", 0.0), 2)


def _model_dict(a) -> dict:
    d = dataclasses.asdict(a)
    d["extraction"]["hits"] = a.extraction.hits
    _exposure_dict(d["exposure"], a.exposure)
    if d.get("char_rank"):
        d["char_rank"]["threshold"] = a.char_rank.threshold
        for i, ci in zip(d["char_rank"]["identifiers"], a.char_rank.identifiers, strict=True):
            i.pop("scores", None)  # every candidate's score: evidence kept out of reports
            i.update(first=ci.first, last=ci.last, greedy_verbatim=ci.greedy_hit,
                     least_likely_verbatim=ci.inverted_hit)
    for case, rc in zip(d["robustness"], a.robustness, strict=True):
        case["extraction"]["hits"] = rc.extraction.hits
        _exposure_dict(case["exposure"], rc.exposure)
    return d


def strong_dict(r) -> dict:
    """The per-person attack's section of the report (``{}`` when the caller gave none)."""
    if r is None:
        return {}
    d = dataclasses.asdict(r)
    for role in ("audited", "original"):
        if d.get(role):
            d[role]["p_values"] = [float(f"{p:.3g}") for p in d[role]["p_values"]]
            d[role]["log_lr"] = [round(v, 2) for v in d[role]["log_lr"]]
    d["seconds"] = round(d["seconds"], 1)
    return d


def build_report(*, subject_id: str, verdict: Verdict, checks: list[Check],
                 control_checks: dict[str, list[Check]], audits: dict, config: AuditConfig,
                 identifiers: list[dict], seconds: float,
                 secrets: list[tuple[str, str]], model_sha256: str | None = None,
                 strong=None) -> AuditReport:
    import torch
    import transformers

    target = audits["audited"]
    kinds = [i["kind"] for i in identifiers]
    secret = is_secret(kinds)
    measured = "retrained" in audits
    counts = answer_counts(target, [p.kind for p in target.extraction.probes], measured)
    if strong is not None and strong.ran:
        counts["shadows"] = strong.shadows_in + strong.shadows_out
    if measured:  # PrivLeak (MUSE) of each verdict attack, in every report with a control
        counts["privleak"] = {c.name.split(":", 1)[1]: c.evidence["privleak"] for c in checks
                              if c.name.startswith("mia:") and "privleak" in c.evidence}
    controls = {
        "original": {"status": verdict.original_control,
                     "checks": [dataclasses.asdict(c) for c in control_checks.get("original", [])]},
        "retrained": {"status": verdict.retrained_control,
                      "checks": [dataclasses.asdict(c)
                                 for c in control_checks.get("retrained", [])]},
    }
    return AuditReport(
        subject_id=subject_id, verdict=verdict.verdict, reason=verdict.reason,
        answer=plain_answer(verdict, checks, counts, secret=secret), checks=checks,
        controls=controls, models={k: _model_dict(v) for k, v in audits.items()},
        identifiers=identifiers, config=config.to_dict(), config_hash=config.config_hash(),
        seeds={"audit": config.seed, "twins": config.seed, "bootstrap": config.seed,
               "sampling": config.seed, "exposure_alternatives": config.seed},
        limits=LIMITS, question=QUESTION_SECRET if secret else QUESTION, tested=counts,
        created_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        seconds=round(seconds, 3), model_sha256=model_sha256, strong=strong_dict(strong),
        versions={"torch": torch.__version__, "transformers": transformers.__version__},
        _secrets=list(secrets),
    )
