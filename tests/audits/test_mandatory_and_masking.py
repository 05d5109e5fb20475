"""Issue 20, item 6: the config names the mandatory checks; concept reports are masked."""

from __future__ import annotations

import json

import pytest

from audits import AuditConfig
from audits.concept import ConceptAuditReport
from audits.errors import AuditConfigError


def test_required_checks_expand_and_validate():
    cfg = AuditConfig(required_checks=("mia", "robustness", "exposure"), quantize=False)
    assert cfg.required() == ["mia:loss", "mia:min_k_pp", "robustness:relearn",
                              "robustness:paraphrase", "exposure"]
    assert AuditConfig().required() == ["extraction", "exposure", "mia:loss", "mia:min_k_pp"]
    assert AuditConfig.from_dict({"required_checks": ["extraction"]}).required() == ["extraction"]
    with pytest.raises(AuditConfigError, match="exposur"):
        AuditConfig(required_checks=("exposur",))


def test_a_concept_report_masks_the_concept():
    rep = ConceptAuditReport(concept="Quillon Averney", verdict="pass", checks=[], scores={},
                             retain={}, similarity={}, circumvention={}, config={})
    blob = json.dumps(rep.to_dict())
    assert "Quillon" not in blob and "Averney" not in blob
    assert rep.to_dict()["concept"] == "[concept, 15 chars]"
