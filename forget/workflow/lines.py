"""The model line a request works on: it starts from the line's head, never from an older model.

``--model`` names a model line by any of its versions (usually the first). The ledger keeps the
line's head, the version serving now; each request unlearns from it, excludes every record
erased earlier on the line from its retain set, has the audit re-check those earlier erasures
(relapse), and moves the head forward when it completes (compare-and-swap in the ledger).

Each version's card lists the erasures made on its line up to it (``erasures``: request id and
record ids, no identifier), so the head's card says what must stay erased; it is checked against
the ledger's own list of completions on the line before any work starts.
"""

from __future__ import annotations

import fcntl
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from forget.ledger import ModelLineError


@dataclass(frozen=True)
class Base:
    """Where a request starts: the model it unlearns from and the head it must replace.

    Attributes:
        line: the model line (the version id of its first model).
        version, sha256, path, card: the model the request unlearns from.
        head: the head's version when the request started (the compare-and-swap expects it).
        erasures: the erasures made on the line up to ``version``, oldest first
            (``{"request_id", "record_ids"}``).
    """

    line: str
    version: str
    sha256: str
    path: Path
    card: dict
    head: str
    erasures: list[dict] = field(default_factory=list)

    @property
    def erased_record_ids(self) -> set[str]:
        return {i for e in self.erasures for i in e.get("record_ids", ())}

    def as_before(self) -> dict:
        """``model_before`` of the certificate and the outcome."""
        return {"version": self.version, "sha256": self.sha256, "line": self.line}


def line_of(card: dict) -> str:
    """The line a model version belongs to (a first version is its own line)."""
    return card.get("line") or card["version"]


def resolve_base(ledger: Any, model_dir: Path | str, *, from_version: str | None = None,
                 registry: Path | str | None = None) -> Base:
    """The line's head (opening the line at ``model_dir`` on first use), or ``from_version``.

    Raises:
        ModelLineError: the head's files are not the version the ledger serves, the head's
            card misses an erasure the ledger completed on the line, ``from_version`` is not
            on the line, or starting from it would drop erasures made since (named).
    """
    from forget.models import read_card
    from forget.models.io import weights_sha256

    card = read_card(model_dir)
    line = line_of(card)
    head = ledger.open_line(line, version=card["version"], sha256=card["sha256"],
                            path=str(Path(model_dir).resolve()))
    head_dir = Path(head.path)
    if not (head_dir / "forget_model.json").is_file():
        raise ModelLineError(
            f"the model line's head (version {head.version}) is missing from {head_dir}: "
            "restore that directory; the ledger serves it and later requests start from it")
    head_card = read_card(head_dir)
    if head_card.get("version") != head.version or weights_sha256(head_dir) != head.sha256:
        raise ModelLineError(
            f"the files at the model line's head ({head_dir}) are not version {head.version} "
            "that the ledger serves (changed or replaced): restore them before processing")
    erasures = list(head_card.get("erasures", []))
    recorded = {e.get("request_id") for e in erasures}
    missing = [r for r in ledger.line_erasures(line) if r not in recorded]
    if missing:
        raise ModelLineError(
            f"the head's model card does not record {len(missing)} erasure(s) the ledger "
            f"completed on this line ({', '.join(missing)}): the head was replaced; restore it")
    _register(model_dir, card, registry)  # so the line's lineage can be read from the registry
    base = Base(line, head.version, head.sha256, head_dir, head_card, head.version, erasures)
    if from_version is None or from_version == head.version:
        return base
    return _older(base, from_version, registry)


def _register(model_dir: Path | str, card: dict, registry: Path | str | None) -> None:
    from forget.models import ModelRegistry

    reg = ModelRegistry(registry)
    known: list[Any] = reg.list()
    if not any(mv.version == card["version"] for mv in known):
        reg.register(model_dir)


def _older(head: Base, version: str, registry: Path | str | None) -> Base:
    """An explicitly chosen older version of the line, if no erasure was made since it."""
    from forget.models import ModelRegistry, read_card

    ancestry: list[Any] = ModelRegistry(registry).lineage(head.version)
    match = [mv for mv in ancestry if mv.version == version]
    if not match:
        raise ModelLineError(
            f"version {version} is not on this model line (its head is {head.version}; see "
            "`forget model list`)")
    card = read_card(match[0].path)
    kept = {e.get("request_id") for e in card.get("erasures", [])}
    since = [e["request_id"] for e in head.erasures if e.get("request_id") not in kept]
    if since:
        raise ModelLineError(
            f"unlearning from version {version} would bring back {len(since)} erasure(s) made "
            f"since on this line ({', '.join(since)}): start from the head ({head.version})")
    return Base(head.line, card["version"], card["sha256"], Path(match[0].path), card,
                head.head, list(card.get("erasures", [])))


def relapse_records(corpus: Any, erasures: list[dict]) -> dict[str, list[dict]]:
    """For each earlier erasure of the line, its records with identifier spans (for the audit's
    relapse check: greedy decoding must not give any of them back). Records no longer in the
    corpus cannot be checked and are left out (the audit report counts what was checked)."""
    rows = {r["record_id"]: r for r in corpus.people + corpus.code}
    out: dict[str, list[dict]] = {}
    for e in erasures:
        recs = [{"record_id": i, "text": rows[i]["text"], "spans": list(rows[i]["spans"])}
                for i in e.get("record_ids", ()) if i in rows and rows[i].get("spans")]
        if recs:
            out[str(e["request_id"])] = recs
    return out


def write_serving(out: Path, ledger: Any, line: str) -> None:
    """``out/serving.json``: each line -> its head, as the ledger has it (a view for services)."""
    from forget.workflow.steps import write_json_atomic

    head = ledger.model_head(line)
    if head is None:
        return
    serving = out / "serving.json"
    out.mkdir(parents=True, exist_ok=True)
    with (out / ".serving.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        head = ledger.model_head(line)  # read again under the lock: never write an older head
        pointers = json.loads(serving.read_text()) if serving.is_file() else {}
        pointers[line] = {"version": head.version, "path": head.path, "sha256": head.sha256,
                          "request_id": head.request_id, "generation": head.generation}
        write_json_atomic(serving, pointers)
