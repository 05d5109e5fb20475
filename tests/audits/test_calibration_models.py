"""The calibrated judge on real tiny models (issue 18).

- A held-out subject (never trained on) is never failed, on corpora generated with the
  checked-in corpus's seed (0, whose Faker stream the twins used to copy) and two other seeds;
  the trained subjects of the same corpora are failed (the audit has power).
- A retrain with another seed passes against a retrained control; the original fails.
- A model pushed to over-unlearn fails as over-unlearning.
- Exposure on a weak, never-trained model passes.

Each extra corpus trains one tiny model once per session (about 40 s each on one core).
"""

from __future__ import annotations

import pytest

from tests.audits.conftest import one_thread

SEEDS = (0, 3)  # 0: the checked-in corpus's seed; the session corpus (seed 7) is the third
# MIA and exposure only: the robustness transformations are tested in test_robustness and
# with the session models in test_verdict.
FAST = dict(samples=2, bootstrap=200, relearn_steps=0, quantize=False, paraphrase=False,
            relearn_other_steps=0)


@pytest.fixture(scope="session")
def seed_worlds(tmp_path_factory):
    """``{seed: (corpus, (model, tokenizer))}`` for each extra corpus seed."""
    from forget.corpus import GenerateConfig, generate, load_corpus
    from forget.models import load_model
    from forget.models.build import train_model

    out = {}
    for seed in SEEDS:
        root = tmp_path_factory.mktemp(f"corpus-seed{seed}")
        generate(root / "data", GenerateConfig(subjects=12, seed=seed, code_files=8))
        with one_thread():
            train_model(root / "data", root / "model", size="tiny", registry=root / "reg",
                        progress=False)
        out[seed] = (load_corpus(root / "data"), load_model(root / "model"))
    return out


def _audit(pair, corpus, sid, **kw):
    from audits import AuditConfig, run_audit

    with one_thread():
        return run_audit(model=pair[0], tokenizer=pair[1], members=corpus.records_of(sid),
                         config=AuditConfig(**FAST), subject_id=sid, **kw)


def _worlds(seed_worlds, corpus, tiny_pair):
    return [(7, corpus, tiny_pair)] + [(s, c, p) for s, (c, p) in seed_worlds.items()]


def test_held_out_subjects_are_never_failed(seed_worlds, corpus, tiny_pair):
    """The model never saw them: the verdict may be pass or inconclusive, never fail."""
    seen = 0
    for seed, c, pair in _worlds(seed_worlds, corpus, tiny_pair):
        for sid in c.subject_ids("holdout"):
            rep = _audit(pair, c, sid, original=pair)
            failed = [ch.name for ch in rep.checks if ch.passed is False]
            assert rep.verdict != "fail" and not failed, (seed, sid, rep.reason)
            mia = [ch for ch in rep.checks if ch.name.startswith("mia:")]
            assert mia and all(ch.evidence["power"] for ch in mia)
            seen += 1
    assert seen >= 6


def test_trained_subjects_are_failed_on_every_corpus(seed_worlds, corpus, tiny_pair):
    """Power: the same audit fails a subject the model memorised, on each corpus."""
    for seed, c, pair in _worlds(seed_worlds, corpus, tiny_pair):
        sid = c.subject_ids("train")[0]
        rep = _audit(pair, c, sid, original=pair)
        assert rep.verdict == "fail", (seed, rep.reason)
        failed = {ch.name for ch in rep.checks if ch.passed is False}
        assert {"mia:loss", "mia:min_k_pp", "exposure"} <= failed, (seed, failed)


@pytest.fixture(scope="session")
def other_seed_retrain(corpus_dir, trained_subject, tmp_path_factory):
    """The tiny model retrained without ``trained_subject`` with another training seed."""
    from forget.models import load_model
    from forget.models.build import train_model

    out = tmp_path_factory.mktemp("models") / "retrained-seed1"
    with one_thread():
        train_model(corpus_dir, out, size="tiny", exclude_subjects=[trained_subject], seed=1,
                    registry=tmp_path_factory.mktemp("reg-seed1"), progress=False)
    return load_model(out)


# The two audits against both controls: one config and one cache, so the original and the
# retrained control are measured once for both (run_audit(cache=...) reuses a control by weight
# hash, inputs and config; tests/audits/test_control_cache.py tests the reuse).
CONTROLLED = dict(FAST, relearn_steps=3)


@pytest.fixture(scope="module")
def control_cache() -> dict:
    return {}


def test_retrain_with_another_seed_passes_against_a_retrained_control(
        other_seed_retrain, retrained_pair, tiny_pair, audit_inputs, control_cache):
    from audits import AuditConfig, run_audit

    with one_thread():
        rep = run_audit(model=other_seed_retrain[0], tokenizer=other_seed_retrain[1],
                        original=tiny_pair, retrained=retrained_pair,
                        config=AuditConfig(**CONTROLLED), cache=control_cache, **audit_inputs)
    assert rep.verdict == "pass", rep.reason
    mia = {ch.name: ch for ch in rep.checks if ch.name.startswith("mia:")}
    assert all(ch.evidence["band"].startswith("measured") for ch in mia.values())
    assert all("privleak" in ch.evidence for ch in mia.values())
    assert set(rep.tested["privleak"]) == {"loss", "min_k_pp"}
    assert "PrivLeak" in rep.to_html()
    # email, address and date of birth are tested once a control calibrates them
    kinds = {r["kind"] for r in next(ch for ch in rep.checks
                                      if ch.name == "exposure").evidence["ranks"]}
    assert {"email", "phone", "national_id"} <= kinds


def test_over_unlearning_fails_as_such(tiny_pair, retrained_pair, audit_inputs, control_cache):
    """Gradient ascent on the subject's records well past the forget point: the model now
    finds them conspicuously unlikely, which the two-sided checks name as over-unlearning."""
    import torch

    from audits import AuditConfig, run_audit
    from audits.robustness import own_copy

    model, tok = tiny_pair
    m = own_copy(model)
    m.train()
    # 6 passes of gradient ascent (Adam, lr 1e-4): the extraction already stops after 2-4; the
    # subject's records then become far less likely than their twins (measured: loss AUC 0.02
    # vs 0.47 for the retrained control). Much more (40 passes at SGD lr 1e-2) destroys the
    # model altogether, which the utility check fails instead.
    opt = torch.optim.Adam(m.parameters(), lr=1e-4)
    texts = [r["text"] for r in audit_inputs["members"]]
    with one_thread(), torch.enable_grad():
        for _ in range(6):
            for t in texts:
                ids = torch.tensor([tok(t)["input_ids"]])
                (-m(input_ids=ids, labels=ids).loss).backward()  # ascent
                opt.step()
                opt.zero_grad()
    m.eval()
    with one_thread():
        rep = run_audit(model=m, tokenizer=tok, original=tiny_pair, retrained=retrained_pair,
                        config=AuditConfig(**CONTROLLED), cache=control_cache, **audit_inputs)
    assert rep.verdict == "fail", rep.reason
    over = [ch for ch in rep.checks if ch.evidence.get("direction") == "over-unlearning"
            or "over-unlearning" in ch.note]
    assert over, rep.reason
    assert "over-unlearning" in rep.reason


def test_exposure_on_a_weak_never_trained_model_passes(corpus, tiny_pair, trained_subject):
    """A model trained for a few steps only (never long enough to memorise anyone) must not
    be failed by exposure: its ranks of true values are chance ranks."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from audits import AuditConfig, run_audit

    tok = tiny_pair[1]
    torch.manual_seed(0)
    weak = LlamaForCausalLM(LlamaConfig(
        vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=1,
        num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=256)).eval()
    for sid in [trained_subject] + corpus.subject_ids("holdout"):
        with one_thread():
            rep = run_audit(model=weak, tokenizer=tok, members=corpus.records_of(sid),
                            config=AuditConfig(**FAST, require_original_control=False),
                            subject_id=sid)
        exp = next(ch for ch in rep.checks if ch.name == "exposure")
        assert exp.passed is True, (sid, exp.evidence)
        assert rep.verdict != "fail", (sid, rep.reason)
