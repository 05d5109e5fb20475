"""Shadow models for the per-person attack (forget/workflow/shadows.py) on real tiny models.

A small fine-tune with a recorded recipe (the session's retrained tiny model as its base, the
subject's records and 24 others, 4 epochs): the original (fine-tuned with the subject) and an
exact retrain (the recipe without them, same seed). The provider re-runs the recipe with seeds
1 and 2, with and without the subject. About 15 s on one core.
"""

from __future__ import annotations

import json
import math

import pytest

from tests.audits.conftest import one_thread

OTHERS = 24


@pytest.fixture(scope="module")
def small_line(corpus, trained_subject, retrained_model_dir, tmp_path_factory):
    from forget.models.finetune import FinetuneParams, finetune

    mine = corpus.records_of(trained_subject)
    others = [r for r in corpus.people
              if r["split"] == "train" and r["subject_id"] != trained_subject][:OTHERS]
    root = tmp_path_factory.mktemp("ulira")
    data = root / "data.jsonl"
    data.write_text("".join(json.dumps({"id": r["record_id"], "text": r["text"]}) + "\n"
                            for r in mine + others))
    hp = FinetuneParams(epochs=4, learning_rate=2e-3, batch_size=8)
    kw = dict(id_field="id", hp=hp, seed=0, registry=root / "reg", progress=False)
    with one_thread():
        orig = finetune(retrained_model_dir, data, root / "original", **kw)
        retr = finetune(retrained_model_dir, data, root / "retrained",
                        exclude_record_ids=[r["record_id"] for r in mine], **kw)
    return data, mine, orig.path, retr.path, len(mine) + OTHERS


def test_per_person_attack_flags_the_original_and_clears_a_retrain(small_line):
    import numpy as np

    from audits import AuditConfig
    from audits import ulira as U
    from audits.strong import per_person_check, record_scores, run_strong
    from forget.corpus import open_corpus
    from forget.models import load_model
    from forget.workflow.shadows import shadow_provider

    data, mine, orig_dir, retr_dir, n = small_line
    provider = shadow_provider(orig_dir, open_corpus(data, id_field="id"),
                               [r["record_id"] for r in mine])
    assert provider.steps_per_model == math.ceil(n / 8) * 4
    assert provider.seeds(2) == [1, 2] and provider.estimate_seconds(2) > 0
    assert len(provider.records_out) == n - len(mine)
    orig, retr = load_model(orig_dir), load_model(retr_dir)
    texts = [r["text"] for r in mine]
    cfg = AuditConfig(strong=True, strong_shadows=2)
    with one_thread():
        hit = run_strong(model=orig[0], tokenizer=orig[1], texts=texts, shadows=provider,
                         config=cfg, original=orig)
        assert provider.estimate_seconds(2) == 0.0  # trained once, reused
        miss = run_strong(model=retr[0], tokenizer=retr[1], texts=texts, shadows=provider,
                          config=cfg)
    assert hit.ran and hit.shadows_in == hit.shadows_out == 2 and hit.seeds == [1, 2, 1, 2]
    assert hit.audited.decision == U.IN and per_person_check(hit).passed is False
    assert miss.audited.decision == U.OUT and per_person_check(miss).passed is True
    assert miss.audited.flagged == 0 and miss.audited.power >= cfg.strong_min_power
    assert not hit.calibration.available  # 2 per side: nothing to hold out, and it says so
    # With the original and the retrain as a third shadow per side, the calibration runs:
    # every held-out IN model is detected, no OUT model is flagged.
    shadows = provider(2)
    with one_thread():
        a = np.stack([record_scores(*p, texts) for p in [orig, *shadows.inside]])
        b = np.stack([record_scores(*p, texts) for p in [retr, *shadows.outside]])
    cal = U.calibrate(a, b, alpha=cfg.strong_alpha)
    assert cal.person_detected == 3 and cal.person_false == 0
    assert cal.tpr_at["0.01"] is None and "100" in cal.reasons["0.01"]


def test_shadows_of_an_unlearned_head_train_like_the_line_not_like_the_method(
        corpus, tiny_model_dir, registry_dir, trained_subject, tmp_path):
    """A head made by an approximate method carries its METHOD's config (a seed of its own);
    the shadows take the training seed and epochs from the line's trained ancestor (through
    the registry) and keep the line's earlier erasures out of both sides. Without the
    ancestor, seed 0 is assumed and the description says so."""
    import shutil

    from forget.models import read_card
    from forget.workflow.shadows import shadow_provider

    trained = read_card(tiny_model_dir)
    other = next(s for s in corpus.subject_ids("train") if s != trained_subject)
    erased = [r["record_id"] for r in corpus.records_of(other)]
    mine = [r["record_id"] for r in corpus.records_of(trained_subject)]
    head = tmp_path / "head"
    shutil.copytree(tiny_model_dir, head)
    card = json.loads((head / "forget_model.json").read_text())
    card.update(kind="unlearned", parent=trained["version"], method="grad_diff",
                config={"seed": 99, "max_steps": 20}, train_wall_s=None,
                erasures=[{"request_id": "earlier", "record_ids": erased}])
    (head / "forget_model.json").write_text(json.dumps(card))
    with one_thread():
        p = shadow_provider(head, corpus, mine, registry=registry_dir)
        lost = shadow_provider(head, corpus, mine, registry=tmp_path / "empty-registry")
    assert p.seed == trained["config"]["seed"] != 99
    assert "not on record" not in p.description
    ids_in = {r.record_id for r in p.records_in}
    assert not ids_in & set(erased) and set(mine) <= ids_in
    assert not {r.record_id for r in p.records_out} & (set(erased) | set(mine))
    assert lost.seed == 0 and "seed 0 is assumed" in lost.description
