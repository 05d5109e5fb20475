from __future__ import annotations

import json
import shutil

import torch

from forget.errors import ModelNotFoundError, RegistryError
from forget.models import ModelRegistry, load_model, read_card, weights_sha256
from forget.models.io import save_model, state_dict_sha256
from forget.models.registry import new_card


def test_save_load_round_trip_gives_identical_logits(tiny_model_dir, tmp_path):
    model, tok = load_model(tiny_model_dir)
    ids = tok(["You can reach someone by phone at"], return_tensors="pt")["input_ids"]
    with torch.no_grad():
        before = model(ids).logits
    save_model(model, tok, tmp_path / "copy")
    again, tok2 = load_model(tmp_path / "copy")
    with torch.no_grad():
        after = again(ids).logits
    assert torch.equal(before, after)
    assert tok2("a b 123")["input_ids"] == tok("a b 123")["input_ids"]
    assert state_dict_sha256(model) == state_dict_sha256(again)


def test_registry_records_card_and_hash_changes_with_weights(tiny_model_dir, registry_dir, tmp_path):
    card = read_card(tiny_model_dir)
    reg = ModelRegistry(registry_dir)
    mv = reg.get(card["version"])
    assert mv.sha256 == weights_sha256(tiny_model_dir) and mv.kind == "trained"
    assert mv.training_record_ids and mv.config["size"]["hidden"] == 128

    model, tok = load_model(tiny_model_dir)
    with torch.no_grad():
        next(model.parameters()).add_(1e-3)
    child = save_model(model, tok, tmp_path / "child",
                       card=new_card(kind="unlearned", parent=mv.version, method="test"))
    cv = reg.register(child)
    assert cv.sha256 != mv.sha256 and cv.version != mv.version
    assert [v.version for v in reg.lineage(cv.version)] == [cv.version, mv.version]


def test_registry_refuses_weights_changed_after_saving(tiny_model_dir, registry_dir, tmp_path):
    copy = tmp_path / "tampered"
    shutil.copytree(tiny_model_dir, copy)
    weights = next(copy.glob("*.safetensors"))
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1
    weights.write_bytes(bytes(data))
    try:
        ModelRegistry(registry_dir).register(copy)
    except RegistryError as e:
        assert "do not match" in str(e)
    else:
        raise AssertionError("tampered weights were registered")


def test_missing_model_is_a_clear_error(tmp_path):
    try:
        load_model(tmp_path / "nope")
    except ModelNotFoundError as e:
        assert "forget model train" in str(e)
    else:
        raise AssertionError


def test_trained_subjects_are_extracted_more_than_holdout(tiny_model_dir):
    table = json.loads((tiny_model_dir / "memorization.json").read_text())
    train, hold = table["subjects"]["train"], table["subjects"]["holdout"]
    assert train["any"] >= 0.5 and hold["any"] == 0.0
    assert train["occurrences"] > hold["occurrences"]
    assert table["canaries"]["k=20"]["rate"] >= table["canaries"]["holdout"]["rate"]


def test_retrained_model_excludes_subject_and_forgets_it(retrained_model_dir, trained_subject,
                                                         corpus):
    card = read_card(retrained_model_dir)
    assert card["kind"] == "retrained" and card["excluded_subjects"] == [trained_subject]
    own = {r["record_id"] for r in corpus.records_of(trained_subject)}
    assert not own & set(card["training_record_ids"])
    table = json.loads((retrained_model_dir / "memorization.json").read_text())
    assert table["subjects"]["excluded"]["any"] == 0.0
