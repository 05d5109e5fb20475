"""``idk_dpo`` on the tiny model: the subject's prompts get a refusal, other people's do not.

After training, greedy decoding from the subject's identifier prefixes yields no identifier and
a refusal for most of them; other subjects' identifiers are still produced at least 80% as
often as before; the original model is untouched.
"""

from __future__ import annotations

import pytest

import forget.methods  # noqa: F401
from audits.extraction import greedy_continuations, greedy_hits, identifier_prompts
from forget.core import METHODS, get_method, subject_sets
from forget.core.data import PEOPLE_KINDS
from forget.errors import InvalidInputError
from forget.methods.idk_dpo import (
    REFUSALS,
    IdkDPOConfig,
    is_refusal,
    preference_pairs,
    retain_prompts,
)
from forget.models import load_model, state_dict_sha256, weights_sha256


@pytest.fixture(scope="module")
def setup(corpus, tiny_model_dir, trained_subject):
    model, tok = load_model(tiny_model_dir)
    fset, rset = subject_sets(corpus, trained_subject)
    others = [p for r in corpus.people
              if r["split"] == "train" and r["subject_id"] != trained_subject
              for p in identifier_prompts(r["record_id"], r["text"], r["spans"], PEOPLE_KINDS)]
    files, state = weights_sha256(tiny_model_dir), state_dict_sha256(model)
    before = sum(greedy_hits(model, tok, others))
    result = get_method("idk_dpo").run(model=model, tokenizer=tok, forget=fset, retain=rset)
    return {"model": model, "tok": tok, "forget": fset, "retain": rset, "others": others,
            "before": before, "files": files, "state": state, "result": result}


def test_subject_prompts_get_refusals(setup):
    tok, prompts, result = setup["tok"], setup["forget"].prompts(PEOPLE_KINDS), setup["result"]
    assert sum(greedy_hits(setup["model"], tok, prompts)) >= 1  # the control: the original leaks
    assert sum(greedy_hits(result.model, tok, prompts)) == 0
    conts = greedy_continuations(result.model, tok, [p.prefix for p in prompts], 16)
    refused = sum(is_refusal(c) for c in conts)
    assert refused > len(prompts) / 2, f"{refused}/{len(prompts)} refusals"
    assert result.method == "idk_dpo" and result.steps > 0 and result.tokens_processed > 0
    assert result.stopped_by in ("criterion", "max_steps") and result.wall_time_s > 0
    assert "behaviour, not removal" in result.guarantee


def test_other_subjects_still_answered(setup):
    before = setup["before"]
    assert before >= 5, "control: the tiny model reproduces other subjects' identifiers"
    after = sum(greedy_hits(setup["result"].model, setup["tok"], setup["others"]))
    assert after >= 0.8 * before, f"other subjects: {after} hits after, {before} before"


def test_original_untouched(setup, tiny_model_dir):
    assert weights_sha256(tiny_model_dir) == setup["files"]
    assert state_dict_sha256(setup["model"]) == setup["state"]
    assert setup["result"].model is not setup["model"]


def test_config_round_trips(setup):
    result = setup["result"]
    cfg = IdkDPOConfig.from_dict(result.config)
    assert cfg == IdkDPOConfig() and cfg.config_hash() == result.config_hash
    custom = IdkDPOConfig(beta=0.5, max_steps=7, retain_ratio=1.0)
    assert IdkDPOConfig.from_dict(custom.to_dict()) == custom
    assert METHODS.get("idk_dpo").config_class is IdkDPOConfig
    with pytest.raises(InvalidInputError):
        IdkDPOConfig(beta=0)
    with pytest.raises(InvalidInputError):
        IdkDPOConfig.from_dict({"gamma": 1})


def test_preference_pairs(setup):
    fset, rset = setup["forget"], setup["retain"]
    rows, n_forget, n_retain = preference_pairs(fset, rset, retain_ratio=4.0, seed=0)
    targets = {p.target for p in fset.prompts(PEOPLE_KINDS)}
    assert n_forget == len(fset.prompts(PEOPLE_KINDS)) and len(rows) == n_forget + n_retain
    assert n_retain == min(4 * n_forget, len(retain_prompts(rset)))
    forget_rows = [r for r in rows if r["chosen"] in REFUSALS]
    assert len(forget_rows) == n_forget
    assert {r["rejected"] for r in forget_rows} == targets
    assert len({r["chosen"] for r in forget_rows}) > 1  # several phrasings
    retain_rows = [r for r in rows if r["rejected"] in REFUSALS]
    assert len(retain_rows) == n_retain
    assert not {r["chosen"] for r in retain_rows} & targets  # never the subject's identifiers
    assert rows == preference_pairs(fset, rset, retain_ratio=4.0, seed=0)[0]  # deterministic
    assert is_refusal(REFUSALS[0]) and not is_refusal(" (555) 123-4567")
