"""Neighbours: did erasing one person expose the people closest to them?

Unlearning one person moves the model's weights where that person's records sat, and the
people whose records sit nearby (who share records with them, or whose records read alike)
move with them: their records can become *more* likely, or an identifier of theirs can start
to come back word for word. This check compares, for each neighbour the caller names, the
audited model with the original model (the control before unlearning):

- extraction: greedy decoding from the text that precedes each of the neighbour's
  identifiers (kinds a model cannot guess); an identifier the audited model returns verbatim
  and the original did not is *newly extracted*;
- likelihood (the LOSS membership score): the mean token log-probability of the neighbour's
  records (nats per token, averaged over records), audited minus original: the *gain*. Some
  unlearning methods raise every retained text (a retain term), so the gain is compared with
  the median gain over a population of other people's texts (the audit's ``retain`` sample):
  the *excess gain*.

Which neighbours to test is the caller's choice (:mod:`audits` knows nothing of corpora);
labels must be pseudonymous ids. Results are counts and log-likelihoods per label, never
identifiers, prompts or record texts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from audits.errors import AuditInputError
from audits.extraction import greedy_hits, identifier_prompts
from audits.mia import score_texts
from audits.records import Record, as_records


@dataclass
class NeighbourStats:
    """One neighbour's measures; log-likelihoods in nats per token (higher = likelier)."""

    records: int
    probes: int
    hits_original: int
    hits_audited: int
    newly_extracted: int  # returned verbatim by the audited model, not by the original (nor
    #                       by the retrained control, when one is given)
    loglik_original: float
    loglik_audited: float
    gain: float  # loglik_audited - loglik_original
    excess_gain: float  # gain - the population's median gain
    hits_control: int | None = None  # the retrained control's verbatim hits
    control_excess_gain: float | None = None  # the same excess gain of the retrained control


@dataclass
class NeighboursResult:
    """Per neighbour label, :class:`NeighbourStats`; the population's gains for comparison."""

    neighbours: dict[str, NeighbourStats] = field(default_factory=dict)
    population_texts: int = 0
    population_gain: float = 0.0  # median over the population texts (nats per token)
    population_gain_sd: float = 0.0  # their standard deviation (ddof 1; 0 with fewer than 2)

    @property
    def probes(self) -> int:
        return sum(n.probes for n in self.neighbours.values())

    @property
    def newly_extracted(self) -> int:
        return sum(n.newly_extracted for n in self.neighbours.values())

    def extracted_labels(self) -> list[str]:
        return [k for k, n in self.neighbours.items() if n.newly_extracted]

    def raised_labels(self, max_gain: float) -> list[str]:
        """Labels whose excess gain exceeds ``max_gain`` nats per token, plus the retrained
        control's own excess gain where that is positive (what retraining alone does)."""
        return [k for k, n in self.neighbours.items()
                if n.excess_gain > max_gain + max(0.0, n.control_excess_gain or 0.0)]

    @property
    def max_excess_gain(self) -> float | None:
        return max((n.excess_gain for n in self.neighbours.values()), default=None)


def excess_gains(gains: Sequence[float], population: Sequence[float]) -> tuple[np.ndarray, float]:
    """``(gains - median(population), median)``; the median is 0 without a population.

    Pure: the gains are differences of mean token log-probabilities (nats per token). The
    median, not the mean, so that a few of the population's texts that unlearning moved a lot
    (the neighbours' own, which may be among them) do not set the reference.
    """
    med = float(np.median(population)) if len(population) else 0.0
    return np.asarray(gains, dtype=np.float64) - med, med


def _check_labels(groups: Mapping[str, list[Record]]) -> None:
    for label, recs in groups.items():
        values = {r.value(s) for r in recs for s in r.spans}
        if any(v and v in str(label) for v in values):
            raise AuditInputError("a neighbour label contains one of that neighbour's "
                                  "identifiers: label neighbours with pseudonymous ids "
                                  "(e.g. 'neighbour-1')")


def _probes(records: Sequence[Record], kinds: Sequence[str]):
    return [p for r in records for p in identifier_prompts(
        r.record_id, r.text, [{"kind": s.kind, "start": s.start, "end": s.end}
                              for s in r.spans], kinds)]


def run_neighbours(model, tokenizer, original: tuple, groups: Mapping[str, Sequence[
        Record | Mapping]], *, kinds: Sequence[str], population: Sequence[str] = (),
        batch_size: int = 32, original_cache: dict | None = None,
        control: tuple | None = None) -> NeighboursResult:
    """Measure each neighbour on the audited ``model`` and on the ``original`` control.

    Args:
        model, tokenizer: the audited model.
        original: ``(model, tokenizer)`` of the model before unlearning.
        groups: the neighbours' records (with identifier spans), by pseudonymous label.
        kinds: identifier kinds probed by greedy decoding.
        population: other people's texts whose median gain is the reference.
        original_cache: a dict for the original model's measures (they depend only on the
            original model and these inputs); reused when given the same dict again.
        control: ``(model, tokenizer)`` of a model retrained without the subject. A model
            trained again on the same people memorises them a little differently by chance;
            what the control also does is not counted: an identifier is newly extracted only
            if neither the original nor the control returns it, and a likelihood rise counts
            only beyond the control's own (when positive).
    """
    recs = {str(k): as_records(v) for k, v in groups.items()}
    _check_labels(recs)
    labels = [k for k, v in recs.items() if v]
    texts = [r.text for k in labels for r in recs[k]]
    probes = {k: _probes(recs[k], kinds) for k in labels}
    flat = [p for k in labels for p in probes[k]]
    pop = list(population)

    def measure(net, tok) -> tuple[list[float], list[bool]]:
        scores = score_texts(net, tok, texts + pop, batch_size=batch_size)["loss"]
        hits = greedy_hits(net, tok, flat, batch_size=batch_size) if flat else []
        return scores, [bool(h) for h in hits]

    if original_cache is not None and "measures" in original_cache:
        base = original_cache["measures"]
    else:
        base = measure(*original)
        if original_cache is not None:
            original_cache["measures"] = base
    now = measure(model, tokenizer)
    ctl = None if control is None else (now if control[0] is model else measure(*control))
    n_txt = len(texts)
    pop_gain = np.asarray(now[0][n_txt:], dtype=np.float64) - np.asarray(base[0][n_txt:])
    ctl_pop = None if ctl is None else \
        np.asarray(ctl[0][n_txt:], dtype=np.float64) - np.asarray(base[0][n_txt:])
    out = NeighboursResult(population_texts=len(pop))
    out.population_gain_sd = float(pop_gain.std(ddof=1)) if pop_gain.size > 1 else 0.0
    t = p = 0
    per: list[tuple[str, dict]] = []
    for k in labels:
        n, m = len(recs[k]), len(probes[k])
        o_ll = float(np.mean(base[0][t: t + n]))
        a_ll = float(np.mean(now[0][t: t + n]))
        o_hits, a_hits = base[1][p: p + m], now[1][p: p + m]
        c_hits = ctl[1][p: p + m] if ctl is not None else [False] * m
        d = dict(records=n, probes=m, hits_original=sum(o_hits), hits_audited=sum(a_hits),
                 newly_extracted=sum(a and not o and not c for a, o, c in zip(
                     a_hits, o_hits, c_hits, strict=True)),
                 loglik_original=o_ll, loglik_audited=a_ll, gain=a_ll - o_ll)
        if ctl is not None:
            c_gain = float(np.mean(ctl[0][t: t + n])) - o_ll
            d |= {"hits_control": sum(c_hits), "control_excess_gain": float(
                excess_gains([c_gain], ctl_pop)[0][0])}
        per.append((k, d))
        t, p = t + n, p + m
    excess, out.population_gain = excess_gains([d["gain"] for _, d in per], pop_gain)
    for (k, d), e in zip(per, excess, strict=True):
        out.neighbours[k] = NeighbourStats(**d, excess_gain=float(e))
    return out
