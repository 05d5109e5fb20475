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
QUESTION_SECRET = "Could the model still reveal this secret?"
# Identifier kinds that belong to no person: a request holding only these is about a secret.
SECRET_KINDS = frozenset({"api_key", "password", "secret_key", "token", "ip_address", "canary"})
LIMITS = {
    "Telling the records apart from look-alikes (membership inference¹)":
        "The subject's records are compared with look-alike records (twins: the same text with "
        "every identifier replaced by a made-up one). One person's records share their name, "
        "so the unit of the test is the identity: the subject against at least 159 made-up "
        "identities (an exact rank test; with fewer the test could not reach its threshold and "
        "says so). With a model retrained without the subject the test asks whether the model "
        "knows more, or less, than that model; without one, the look-alikes are assumed to be "
        "made like the real values and the band is assumed, not measured.",
    "Word-for-word completion (extraction²)":
        "Only prompts drawn from the subject's own records and a few rewordings are tried; an "
        "attacker with other prompts or many more samples might succeed where these did not.",
    "Singling out the true value (exposure³)":
        "Ranks the true value among made-up values of the same format; the smallest possible "
        "p-value is 1 / (look-alikes + 1), and enough look-alikes are drawn to reach the "
        "threshold. A value ranked implausibly low fails too: avoiding it singles it out. "
        "Without a retrained control only random digit strings (phone, national id) are "
        "tested, because for emails and addresses what the model knows about other people "
        "makes some look-alikes likelier; with a control, emails, addresses and dates of birth "
        "are tested against it.",
    "Utility (perplexity, lm-eval)":
        "Measured on the suite's own small tasks about other people in the same data, not on "
        "general benchmarks; compared with the original model only when one is given.",
    "Recovery (relearning, 8-bit weights, rewording)":
        "A few fine-tuning steps, one quantization scheme and template rewordings: stronger "
        "recovery attacks exist (least-likely decoding, long fine-tuning on other data). With a "
        "retrained control the same attacks run on it and only recovery beyond it fails.",
    "Relapse (earlier erasures)":
        "Only greedy completions from the earlier subjects' own record prefixes are tried, for "
        "identifiers that cannot be guessed (phone, email, national id, secrets); it shows "
        "that this erasure did not undo an earlier one, not a full re-audit of each.",
    "Error rates":
        "By construction the audit wrongly fails a model that never saw the data at most "
        "about 5% of the time (2.5% membership inference + 2.5% exposure) when the "
        "look-alikes are made like the real values, or when a retrained control is given; "
        "measured rates on the suite's own corpora are in bench/results/audit_calibration.json "
        "(bench/audit_calibration.py); a real corpus may differ.",
    "Controls":
        "The original model shows the audit can detect the data; the retrained model measures "
        "the band a model that never saw the person falls in. Without them the verdict says "
        "so.",
}
FOOTNOTES = [
    "¹ Membership inference: LOSS and Min-K%++ scores (zlib, Min-K%, reference reported); "
    "exact two-sided rank test of the subject's mean score among twin identities; PrivLeak "
    "(MUSE) against the retrained control.",
    "² Extraction: greedy and sampled decoding from the text preceding each identifier; "
    "memorization accuracy (MA) and extraction likelihood (EL_n) reported.",
    "³ Exposure (Secret Sharer, Carlini et al. 2019): rank of the true value among same-format "
    "candidates, two-sided, Bonferroni over identifiers.",
]
PLAIN_NAMES = {
    "extraction": "word-for-word completion", "exposure": "singling out the true value",
    "mia": "telling the records apart from look-alikes", "utility": "utility",
    "robustness": "recovery", "relapse": "earlier erasures",
}
PLAIN = {
    "extraction": "the model completed {v:.0f} of {its} identifiers word for word when "
                  "prompted with the text that preceded them",
    "exposure": "the model singles out {its} true value among look-alike values",
    "exposure_over": "the model avoids {its} true value so consistently that it stands out "
                     "among look-alike values (over-unlearning)",
    "mia": "the model tells {its} records apart from look-alike records",
    "mia_over": "the model treats {its} records as conspicuously unfamiliar compared with "
                "look-alike records (over-unlearning: the absence itself gives {it} away)",
    "utility": "the model lost too much of what it knows about other people ({n})",
    "robustness": "the data is still found after {n}",
    "relapse": "the model gives back {v:.0f} identifier(s) of people whose erasure from this "
               "model was completed earlier",
}
_ROBUST = {"relearn": "a few steps of fine-tuning on look-alike text",
           "int8": "8-bit quantization of the weights", "paraphrase": "rewording the prompts"}


def plain_name(name: str) -> str:
    """``mia:loss`` -> ``telling the records apart from look-alikes (loss)``."""
    head, _, tail = name.partition(":")
    base = PLAIN_NAMES.get(head, head)
    return f"{base} ({_ROBUST.get(tail, tail)})" if tail else base


def is_secret(kinds) -> bool:
    """A request whose identifiers all belong to no person (keys, passwords, tokens...)."""
    kinds = set(kinds)
    return bool(kinds) and kinds <= SECRET_KINDS


def _plain(c: Check, secret: bool) -> str:
    head = c.name.split(":")[0]
    tail = c.name.split(":")[1] if ":" in c.name else ""
    over = "over-unlearning" in c.note and head in ("mia", "exposure")
    words = {"its": "this secret's" if secret else "this person's",
             "it": "the secret" if secret else "the person"}
    return PLAIN[head + ("_over" if over else "")].format(
        v=c.value or 0.0, n=_ROBUST.get(tail, tail), **words)


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
        return (f"No evidence that it could. The model completed none of the "
                f"{_count(counts.get('prompts', 0), 'prompt')} that precede "
                f"{'the secret' if secret else 'this person' + chr(39) + 's identifiers'} "
                f"({kinds}) word for word"
                + (f"; it ranked {_count(ranked, 'true value')} among "
                   f"{counts.get('lookalikes', 0)} made-up look-alikes each no higher and no "
                   "lower than chance" if ranked else "")
                + f"; and it told the {_count(counts.get('records', 0), 'record')} apart from "
                f"{counts.get('twin_identities', 0)} look-alike identities no better and no "
                "worse than " + ("a model retrained without them" if counts.get("measured")
                                 else "chance") + ". The same tests found the data in the "
                "original model, so they were able to find it.")
    return ("We cannot say. " + v.reason.removeprefix("inconclusive: ").capitalize() + ".")


def answer_counts(target, plan_kinds: list[str], measured: bool) -> dict:
    """What was tested on the audited model, counted from its results."""
    return {"prompts": len(target.extraction.probes),
            "kinds": sorted(set(plan_kinds)),
            "ranked": len(target.exposure.identifiers),
            "lookalikes": target.exposure.alternatives,
            "records": target.mia.n_members, "twin_identities": target.mia.copies or 0,
            "measured": measured}


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

    target = audits["audited"]
    kinds = [i["kind"] for i in identifiers]
    secret = is_secret(kinds)
    measured = "retrained" in audits
    counts = answer_counts(target, [p.kind for p in target.extraction.probes], measured)
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
        seconds=round(seconds, 3),
        versions={"torch": torch.__version__, "transformers": transformers.__version__},
        _secrets=list(secrets),
    )
