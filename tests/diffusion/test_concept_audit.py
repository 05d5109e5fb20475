"""The concept audit stands alone (no import of ``forget``), leaves the pipelines it probes
unchanged, and refuses bad inputs by name."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from audits.concept import PLACEHOLDER, ConceptAuditConfig, concept_audit, textual_inversion
from audits.errors import AuditInputError


def test_audits_concept_never_imports_forget():
    code = ("import sys, audits.concept; "
            "print(any(m == 'forget' or m.startswith('forget.') for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "False"


def test_textual_inversion_leaves_the_pipeline_alone(red_erasure):
    from diffusion_helpers import fingerprint

    erased, fset = red_erasure["result"].model, red_erasure["forget"]
    before = fingerprint(erased)
    vocab = len(erased.tokenizer)
    attacked = textual_inversion(erased, fset.images, [p.replace("red", "{}")
                                                       for p in fset.image_prompts], steps=3)
    assert fingerprint(erased) == before and len(erased.tokenizer) == vocab
    assert PLACEHOLDER in attacked.tokenizer.get_vocab()
    assert attacked.unet is erased.unet


def test_report_saves_json_and_html(red_erasure, tmp_path):
    path = red_erasure["report"].save(tmp_path)
    data = json.loads(path.read_text())
    assert data["verdict"] == "pass" and data["circumvention"]["ran"]
    assert "Concept erasure audit" in (tmp_path / "report.html").read_text()


def test_original_as_erased_has_no_effect_and_is_caught(red_erasure, tiny_world):
    """The audit fails a pipeline that erased nothing (the original audited against itself)."""
    from diffusion_helpers import audit_erasure

    pipe, fset = red_erasure["pipe"], red_erasure["forget"]
    rep = audit_erasure(tiny_world, pipe, pipe, fset,
                        ConceptAuditConfig(ti_steps=0, ti_control=False))
    assert rep.verdict == "fail" and rep.similarity["concept"] > 0.999


@pytest.mark.parametrize("bad,match", [
    ({"erase_margin": 1.5}, "erase_margin"), ({"images_per_prompt": 0}, "images_per_prompt"),
    ({"ti_steps": -1}, "ti_steps"),
])
def test_config_refuses_bad_values(bad, match):
    with pytest.raises(AuditInputError, match=match):
        ConceptAuditConfig(**bad)


def test_bad_inputs_are_refused(red_erasure):
    pipe, fset = red_erasure["pipe"], red_erasure["forget"]
    with pytest.raises(AuditInputError, match="non-empty"):
        concept_audit(original=pipe, erased=pipe, scorer=lambda x: x, concept="red",
                      concept_prompts=[], unrelated_prompts=["a blue square"])
    with pytest.raises(AuditInputError, match="as many prompts"):
        textual_inversion(pipe, fset.images, ["a {} circle"])
    with pytest.raises(AuditInputError, match="'{}'"):
        textual_inversion(pipe, fset.images[:1], ["a red circle"])
