"""Fixtures for the end-to-end workflow tests (tiny model, session-scoped runs)."""

from __future__ import annotations

import pytest
from wf_helpers import FAST_AUDIT, LIGHT_AUDIT, identifiers_of, person_request


@pytest.fixture(scope="session")
def fast_audit():
    from audits import AuditConfig

    return AuditConfig(**FAST_AUDIT)


@pytest.fixture(scope="session")
def person_run(tmp_path_factory, corpus, corpus_dir, tiny_model_dir, trained_subject,
               retrained_model_dir):
    """One person request processed end to end through the Python API, logs captured (the
    auto plan with one attempt per method: npo, then retraining when its audit fails).

    The light audit (no robustness probes: see LIGHT_AUDIT) with the 5 nearest people: npo's
    attempt still fails it on extraction, exposure and MIA, and nothing here is about the probes.
    """
    import logging

    from audits import AuditConfig
    from forget.ledger import Ledger
    from forget.workflow import process_request

    root = tmp_path_factory.mktemp("person")
    ident = identifiers_of(corpus, trained_subject)
    led = Ledger(root / "ledger.db")
    led.submit(person_request("req-person", ident))
    waiting = process_request(led, "req-person", model=tiny_model_dir, data=corpus_dir,
                              out=root / "out", registry=root / "registry")
    led.verify_identity("req-person")
    messages: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda r: messages.append(r.getMessage())  # type: ignore[method-assign]
    logging.getLogger().addHandler(handler)
    try:
        res = process_request(led, "req-person", model=tiny_model_dir, data=corpus_dir,
                              out=root / "out", registry=root / "registry",
                              retrained=retrained_model_dir, max_attempts=1,
                              audit_config=AuditConfig(**LIGHT_AUDIT | {"neighbour_count": 5}),
                              progress=lambda s, m: messages.append(m))
    finally:
        logging.getLogger().removeHandler(handler)
    return {"root": root, "ledger": led, "result": res, "waiting": waiting, "ident": ident,
            "messages": messages}
