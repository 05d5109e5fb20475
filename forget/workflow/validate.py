"""Validation first: every input of a run is resolved and checked before the ledger changes.

A typo in a method name, a config field that does not exist, an audit config of the wrong
kind, a model or data folder that is not there: each is refused here with a typed one-line
error, before :func:`forget.workflow.process_request` writes any ledger event or file, so a
mistake never enters the hash chain (where it would stay for good) and a worker knows the
failure is one of configuration (not worth retrying).

:func:`check_run` checks what does not depend on the request (a worker calls it once at
start); :func:`check_request` adds what does (the request's kind: a person, a code secret or
a concept) and is what ``process_request`` calls.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from forget.errors import DataNotFoundError, InvalidInputError, ModelNotFoundError

# What ``auto`` may resolve to, by kind of request (see process.plan_attempts / concept.py).
AUTO_TEXT = ("npo", "code_eraser")
AUTO_HEAD = "noisy_gd"
AUTO_CONCEPT = "text_encoder"


class ConfigurationError(InvalidInputError):
    """An input of the run (method, its config, audit config, model, data) is unusable."""


def _folder(path: Path | str, what: str, flag: str) -> Path:
    p = Path(path)
    if not p.exists():
        err = ModelNotFoundError if what == "model" else DataNotFoundError
        raise err(f"the {what} folder {p} does not exist: check {flag}")
    return p


def check_model(model: Path | str, *, concept: bool = False) -> Path:
    """The model folder exists and carries the suite's card (a saved or registered model)."""
    from forget.models import read_card

    p = _folder(model, "model", "--model")
    if not p.is_dir():
        raise ModelNotFoundError(f"the model {p} is not a folder: give a model directory")
    read_card(p)  # ModelNotFoundError naming the fix (`forget model import`) when absent
    return p


def check_data(data: Path | str) -> Path:
    """The training data exists (a file or folder the corpus loader reads)."""
    return _folder(data, "data", "--data")


def method_config_for(name: str, method_config: dict | None) -> Any:
    """Build ``name``'s config with ``method_config``'s fields (raises on unknown fields/values)."""
    from forget.core import get_method

    impl = get_method(name)  # UnknownMethodError with a "did you mean"
    fields = {k: v for k, v in (method_config or {}).items() if not str(k).startswith("_")}
    try:
        return impl.config_class.from_dict(impl.config_class().to_dict() | fields)
    except (TypeError, ValueError) as e:
        if isinstance(e, InvalidInputError):
            raise
        raise ConfigurationError(
            f"method_config for {name}: {' '.join(str(e).split())}; fix the value") from None


def check_method(method: str, method_config: dict | None, *,
                 candidates: tuple[str, ...] = AUTO_TEXT) -> None:
    """``method`` is registered (or ``auto``) and ``method_config`` fits it.

    For ``auto`` the config must fit at least one method ``auto`` may choose (which one
    depends on the records found, only known after scoping).
    """
    import forget.methods  # noqa: F401  (registers every method)

    if not isinstance(method, str) or not method:
        raise ConfigurationError("the method must be a registered method name or auto")
    if method_config is not None and not isinstance(method_config, dict):
        raise ConfigurationError("method_config must be a mapping of config fields")
    if method != "auto":
        method_config_for(method, method_config)
        return
    if not method_config:
        return
    errors = []
    for name in candidates:
        try:
            method_config_for(name, method_config)
            return
        except InvalidInputError as e:
            errors.append(str(e))
    raise ConfigurationError(f"method_config fits no method auto may choose: {errors[0]}")


def check_audit_config(audit_config: Any, *, concept: bool) -> None:
    """The audit config is of the kind the request is audited with."""
    if audit_config is None:
        return
    if concept:
        from audits.concept import ConceptAuditConfig

        if not isinstance(audit_config, ConceptAuditConfig):
            raise ConfigurationError("a concept request is audited with an audits.concept."
                                     "ConceptAuditConfig, not a language-model AuditConfig")
        return
    from audits import AuditConfig

    if not isinstance(audit_config, AuditConfig):
        raise ConfigurationError("audit_config must be an audits.AuditConfig (load one with "
                                 "AuditConfig.from_file)")


def check_run(*, model: Path | str, data: Path | str, method: str = "auto",
              method_config: dict | None = None, audit_config: Any = None,
              retrained: Path | str | None = None) -> None:
    """What can be checked without a request: the folders exist, the method and configs fit.

    Raises a typed error (a :class:`~forget.errors.ForgetError` or an ``audits`` error) that
    names the bad input and the fix; writes nothing.
    """
    _folder(model, "model", "--model")
    check_data(data)
    if retrained is not None:
        check_model(retrained)
    from audits import AuditConfig

    if audit_config is not None and not isinstance(audit_config, AuditConfig):
        from audits.concept import ConceptAuditConfig

        if not isinstance(audit_config, ConceptAuditConfig):
            raise ConfigurationError("audit_config must be an audits.AuditConfig or an "
                                     "audits.concept.ConceptAuditConfig")
    if method != "auto":
        check_method(method, method_config)
    else:
        check_method(method, method_config,
                     candidates=AUTO_TEXT + (AUTO_HEAD, AUTO_CONCEPT))


def check_request(ledger, request_id: str, *, model: Path | str, data: Path | str,
                  method: str = "auto", method_config: dict | None = None,
                  audit_config: Any = None, retrained: Path | str | None = None) -> None:
    """Everything :func:`process_request` will use, checked before its first ledger event.

    Nothing is checked for a request that will not run (finished, rejected, failed for
    good, or waiting for identity): processing it again only reports its state.
    """
    from forget.ledger import State

    rec = ledger.get(request_id)
    if rec.state in (State.COMPLETED, State.REJECTED) or rec.stage == State.RECEIVED or (
            rec.state == State.FAILED and not rec.retryable):
        return
    check_run(model=model, data=data, method=method, method_config=method_config,
              audit_config=audit_config, retrained=retrained)
    concept = _is_concept(ledger, request_id)
    check_model(model, concept=concept)
    check_audit_config(audit_config, concept=concept)
    if concept:
        check_method(method, method_config, candidates=(AUTO_CONCEPT,))
        return
    from forget.methods._certified_head import has_head

    if has_head(model):
        if method not in ("auto", AUTO_HEAD):
            raise ConfigurationError(
                f"the model holds a certified head; method {method!r} would drop it and leave "
                "the records in the head: use method noisy_gd (or auto)")
        check_method(method, method_config, candidates=(AUTO_HEAD,))
        return
    check_method(method, method_config)


def _is_concept(ledger, request_id: str) -> bool:
    from forget.ledger.errors import ShreddedError
    from forget.workflow.concept import concept_value

    try:
        return concept_value(ledger.identifiers(request_id)) is not None
    except ShreddedError:
        return False
