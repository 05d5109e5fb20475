"""Relapse: does the audited model give back people erased *earlier* from the same model line?

Every erasure is audited when it is made; this check makes sure later ones do not undo it
(an unlearning run's retain term, or a method started from the wrong model, can teach an
erased person back). It is cheap on purpose: greedy decoding from the text that preceded each
identifier in the earlier subjects' records, counting verbatim hits. Results are counts per
earlier erasure (by its label, e.g. a request id), never identifiers or prompts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from audits.extraction import greedy_hits, identifier_prompts
from audits.records import Record, as_records


@dataclass
class RelapseResult:
    """Greedy verbatim hits per earlier erasure: ``{label: {"records", "probes", "hits"}}``."""

    erasures: dict[str, dict[str, int]] = field(default_factory=dict)

    @property
    def probes(self) -> int:
        return sum(e["probes"] for e in self.erasures.values())

    @property
    def hits(self) -> int:
        return sum(e["hits"] for e in self.erasures.values())

    @property
    def relapsed(self) -> list[str]:
        """Labels of the earlier erasures of which something came back."""
        return [k for k, e in self.erasures.items() if e["hits"]]


def run_relapse(model, tokenizer, groups: Mapping[str, Sequence[Record | Mapping]], *,
                kinds: Sequence[str], batch_size: int = 64) -> RelapseResult:
    """Greedy-decode every identifier of ``kinds`` in each group's records from its prefix."""
    out = RelapseResult()
    for label, recs in groups.items():
        records = as_records(recs)
        prompts = [p for r in records for p in identifier_prompts(
            r.record_id, r.text, [{"kind": s.kind, "start": s.start, "end": s.end}
                                  for s in r.spans], kinds)]
        hits = greedy_hits(model, tokenizer, prompts, batch_size=batch_size) if prompts else []
        out.erasures[str(label)] = {"records": len(records), "probes": len(prompts),
                                    "hits": int(sum(hits))}
    return out
