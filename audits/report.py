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

SCHEMA = "forget-suite/audit-report/1"
QUESTION = "Could the model still reveal this person's data?"
LIMITS = {
    "Membership inference (LOSS, zlib, Min-K%, Min-K%++, reference)":
        "Tells the subject's records from look-alike records (twins) by how familiar the model "
        "finds them. With a handful of records the confidence interval is wide, so only a "
        "strong signal fails the check; the twins share the subject's templates, so the test "
        "sees the identifiers, not the writing style. TPR at 0.1% FPR needs over 1,000 "
        "non-members to be meaningful and is reported for completeness.",
    "Extraction (greedy and sampled completions, MA, EL_n)":
        "Only prompts drawn from the subject's own records and a few paraphrases are tried; an "
        "attacker with other prompts or many more samples might succeed where these did not. "
        "MA and EL_n describe how close the model comes, token by token, without a threshold.",
    "Exposure (Secret Sharer)":
        "Ranks the true value among alternatives of the same format; the smallest possible "
        "p-value is 1 / (alternatives + 1), and the alternatives follow common formats, not "
        "necessarily the exact distribution the real values came from. By default only "
        "identifiers that are random digit strings (phone, national id) are tested: for "
        "emails, names and addresses, what the model knows about other people makes some "
        "look-alikes likelier, so the test would flag models that never saw the person.",
    "Utility (perplexity, lm-eval)":
        "Measured on the suite's own small tasks about other people in the same data, not on "
        "general benchmarks; compared with the original model only when one is given.",
    "Robustness (relearning, int8, paraphrases)":
        "A few relearning steps, one quantization scheme and template paraphrases: stronger "
        "recovery attacks exist. Controls do not run robustness checks.",
    "Relapse (earlier erasures)":
        "Only greedy completions from the earlier subjects' own record prefixes are tried, for "
        "identifiers that cannot be guessed (phone, email, national id, secrets); it shows "
        "that this erasure did not undo an earlier one, not a full re-audit of each.",
    "Controls":
        "The original model shows the audit can detect the data; the retrained model shows "
        "the thresholds do not fail a model that never saw the person. Without them the "
        "verdict says so.",
}
PLAIN = {
    "extraction": "the model completed {v:.0f} of this person's identifiers word for word when "
                  "prompted with the text that preceded them",
    "exposure": "the model ranked at least one of this person's true identifiers above "
                "look-alike values far more often than chance (smallest p-value {v:.3g})",
    "mia": "the model tells this person's records apart from look-alike records "
           "(upper AUC bound {v:.2f})",
    "utility": "the model lost too much of what it knows about other people ({n})",
    "robustness": "the data is still found after {n}",
    "relapse": "the model gives back {v:.0f} identifier(s) of people whose erasure from this "
               "model was completed earlier",
}
_ROBUST = {"relearn": "a few steps of fine-tuning on look-alike text",
           "int8": "8-bit quantization of the weights", "paraphrase": "rewording the prompts"}


def _plain(c: Check) -> str:
    head = c.name.split(":")[0]
    tail = c.name.split(":")[1] if ":" in c.name else ""
    return PLAIN[head].format(v=c.value or 0.0, n=_ROBUST.get(tail, tail))


def plain_answer(v: Verdict, checks: list[Check], identifiers: int) -> str:
    """The first paragraph of the report, for a reader who is not an ML engineer."""
    failed = [c for c in checks if c.name in v.failed]
    if v.verdict == FAIL:
        return ("Yes. The model can still reveal this person's data: "
                + "; ".join(dict.fromkeys(_plain(c) for c in failed))
                + ". The erasure is not complete.")
    if v.verdict == PASS:
        return (f"No evidence that it could. The model did not reproduce any of the "
                f"{identifiers} identifiers of this person that were tested, ranked them no "
                "higher than random look-alike values, and did not tell this person's records "
                "apart from look-alike records beyond the agreed thresholds. The same tests "
                "found the data in the original model, so they were able to find it.")
    return ("We cannot say. " + v.reason.removeprefix("inconclusive: ").capitalize() + ".")


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
            r=self.to_dict(), question=QUESTION, plots=plots(self.models))

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


def _model_dict(a) -> dict:
    d = dataclasses.asdict(a)
    d["extraction"]["hits"] = a.extraction.hits
    _exposure_dict(d["exposure"], a.exposure)
    for case, rc in zip(d["robustness"], a.robustness, strict=True):
        case["extraction"]["hits"] = rc.extraction.hits
        _exposure_dict(case["exposure"], rc.exposure)
    return d


def build_report(*, subject_id: str, verdict: Verdict, checks: list[Check],
                 control_checks: dict[str, list[Check]], audits: dict, config: AuditConfig,
                 identifiers: list[dict], seconds: float,
                 secrets: list[tuple[str, str]]) -> AuditReport:
    import torch
    import transformers

    controls = {
        "original": {"status": verdict.original_control,
                     "checks": [dataclasses.asdict(c) for c in control_checks.get("original", [])]},
        "retrained": {"status": verdict.retrained_control,
                      "checks": [dataclasses.asdict(c)
                                 for c in control_checks.get("retrained", [])]},
    }
    return AuditReport(
        subject_id=subject_id, verdict=verdict.verdict, reason=verdict.reason,
        answer=plain_answer(verdict, checks, len(identifiers)), checks=checks,
        controls=controls, models={k: _model_dict(v) for k, v in audits.items()},
        identifiers=identifiers, config=config.to_dict(), config_hash=config.config_hash(),
        seeds={"audit": config.seed, "twins": config.seed, "bootstrap": config.seed,
               "sampling": config.seed, "exposure_alternatives": config.seed},
        limits=LIMITS, created_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        seconds=round(seconds, 3),
        versions={"torch": torch.__version__, "transformers": transformers.__version__},
        _secrets=list(secrets),
    )
