"""AuditConfig: round-trips, a stable hash, clear errors."""

from __future__ import annotations

import json

import pytest

from audits import AuditConfig, AuditConfigError, AuditConfigNotFoundError


def test_round_trip_and_hash(tmp_path):
    c = AuditConfig(samples=3, mia_verdict_attacks=("loss",))
    p = tmp_path / "c.json"
    p.write_text(json.dumps(c.to_dict()))
    back = AuditConfig.from_file(p)
    assert back == c and back.config_hash() == c.config_hash()
    assert AuditConfig().config_hash() != c.config_hash()


@pytest.mark.parametrize("data, message", [
    ({"mia_auc_uper_max": 0.8}, "unknown audit config key"),
    ({"min_k": 0}, "min_k"),
    ({"exposure_alternatives": 0}, "exposure_alternatives"),
    ({"temperature": -1}, "temperature"),
    ({"mia_verdict_attacks": ["lira"]}, "unknown attack"),
    ({"mia_auc_lower_min": 0.95}, "mia_auc_lower_min"),
    ({"twins_per_record": -1}, "twins_per_record"),
    ({"mia_alpha": 0}, "mia_alpha"),
])
def test_bad_values(data, message):
    with pytest.raises(AuditConfigError, match=message):
        AuditConfig.from_dict(data)


def test_missing_and_malformed_files(tmp_path):
    with pytest.raises(AuditConfigNotFoundError):
        AuditConfig.from_file(tmp_path / "none.json")
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(AuditConfigError, match="not valid JSON"):
        AuditConfig.from_file(tmp_path / "bad.json")
    with pytest.raises(ValueError):  # also a builtin ValueError
        AuditConfig.from_dict({"nope": 1})
