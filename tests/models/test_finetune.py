"""Fine-tuning with a recorded recipe, and exact retraining by that recipe (issue 19, item 3).

The base is a tiny random-initialised GPT-2-architecture model with a tokenizer that has no pad
token (as GPT-2's); the data a parquet file with the organisation's own columns (``doc_id``,
``body``, ``customer``). One record plants a phone number that the fine-tune memorises
(``tickets.py``; the fixtures are the package's, ``conftest.py``).
"""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from forget.errors import (
    BaseModelChangedError,
    MissingColumnError,
    RetrainUnavailableError,
    UnknownRecordError,
)
from forget.methods.retrain import Retrain, RetrainConfig
from forget.models import load_model, read_card, weights_sha256
from forget.models.finetune import (
    FinetuneParams,
    check_base,
    data_mismatch,
    finetune,
    finetune_records,
    recipe_of,
    retrain_unavailable_reason,
)
from forget.models.io import state_dict_sha256
from tests.forked_cli import run_forget
from tests.models.tickets import (
    HP,
    NAME,
    PHONE,
    PLANTED_ID,
    _finetune,
    _rows,
    _says_phone,
    _sets,
)


def test_finetune_memorises_the_planted_identifier(tuned, base_dir):
    model, tok = load_model(tuned.path)
    assert _says_phone(model, tok)
    base, base_tok = load_model(base_dir)
    assert not _says_phone(base, base_tok)
    assert tuned.records == 24 and tuned.steps == 3 * HP.epochs


def test_card_records_the_whole_recipe_and_no_identifier(tuned, base_dir, parquet, registry):
    from forget.corpus import open_corpus
    from forget.models import ModelRegistry

    card = read_card(tuned.path)
    recipe = card["recipe"]
    assert card["kind"] == "finetuned" and card["parent"] is None
    assert recipe["base"] == {"path": str(base_dir.resolve()), "sha256": weights_sha256(base_dir),
                              "version": None, "model_type": "gpt2"}
    corpus = open_corpus(parquet, text_field="body", id_field="doc_id", group_field="customer")
    assert recipe["data"]["fingerprint"] == corpus.fingerprint
    assert recipe["data"]["files"] == corpus.data_sha256 == card["data_sha256"]
    assert (recipe["data"]["text_field"], recipe["data"]["id_field"],
            recipe["data"]["group_field"]) == ("body", "doc_id", "customer")
    assert FinetuneParams.from_dict(recipe["params"]) == HP and recipe["seed"] == 11
    assert recipe["max_length"] == 64 and recipe["torch_threads"] == torch.get_num_threads()
    assert {"torch", "transformers", "peft"} <= set(recipe["versions"])
    assert recipe["training_record_ids"] == [r["doc_id"] for r in _rows()]
    assert card["training_record_ids"] == sorted(recipe["training_record_ids"])
    text = (tuned.path / "forget_model.json").read_text()
    for value in (PHONE, NAME, "Ada Brook", "Lyon"):
        assert value not in text
    assert recipe_of(tuned.path) == recipe and retrain_unavailable_reason(tuned.path) is None
    assert data_mismatch(recipe, corpus, strict=True) is None
    assert "--id-field" in data_mismatch(recipe, open_corpus(parquet, text_field="body"))
    assert ModelRegistry(registry).get(card["version"]).path == str(tuned.path.resolve())


def test_retrain_by_recipe_is_exactly_the_finetune_without_the_record(tuned, tuned_without,
                                                                       parquet):
    assert read_card(tuned_without.path)["recipe"]["excluded_record_ids"] == [PLANTED_ID]
    model, tok = load_model(tuned.path)  # the recipe is read from the model's own card
    forget, retain = _sets(parquet)
    res = Retrain().run(model=model, tokenizer=tok, forget=forget, retain=retain,
                        config=RetrainConfig())
    reference, _ = load_model(tuned_without.path)
    assert state_dict_sha256(res.model) == state_dict_sha256(reference)
    assert res.trained_record_ids == sorted(r["doc_id"] for r in _rows()
                                            if r["doc_id"] != PLANTED_ID)
    assert res.config["resolved"] == "recipe" and "recipe" not in res.config
    assert not _says_phone(res.model, tok)


def test_retrain_refuses_a_base_whose_weights_changed(tuned, parquet, tmp_path):
    recipe = read_card(tuned.path)["recipe"]
    moved = tmp_path / "base"
    shutil.copytree(recipe["base"]["path"], moved)
    weights = next(moved.glob("*.safetensors"))
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1
    weights.write_bytes(bytes(data))
    changed = recipe | {"base": recipe["base"] | {"path": str(moved)}}
    model, tok = load_model(tuned.path)
    forget, retain = _sets(parquet)
    with pytest.raises(BaseModelChangedError, match="changed since the fine-tune.*forget model "
                       "finetune"):
        Retrain().run(model=model, tokenizer=tok, forget=forget, retain=retain,
                      config=RetrainConfig(recipe=changed))
    gone = recipe | {"base": recipe["base"] | {"path": str(tmp_path / "absent")}}
    with pytest.raises(RetrainUnavailableError, match="no longer at"):
        check_base(gone)
    # a base that itself trained on a record to forget: re-running from it would not erase it
    seen = tmp_path / "seen"
    shutil.copytree(recipe["base"]["path"], seen)
    (seen / "forget_model.json").write_text(json.dumps({"training_record_ids": [PLANTED_ID]}))
    with pytest.raises(RetrainUnavailableError, match="itself trained on 1 of the records"):
        Retrain().run(model=model, tokenizer=tok, forget=forget, retain=retain,
                      config=RetrainConfig(recipe=recipe | {"base": recipe["base"] | {
                          "path": str(seen)}}))


def test_a_model_unlearned_from_a_finetune_keeps_its_recipe(tuned, registry, tmp_path):
    from forget.models import ModelRegistry
    from forget.models.io import save_model
    from forget.models.registry import new_card

    model, tok = load_model(tuned.path)
    with torch.no_grad():
        next(model.parameters()).add_(1e-3)  # stands for an unlearning method's update
    child = save_model(model, tok, tmp_path / "child", card=new_card(
        kind="unlearned", parent=tuned.version.version, method="npo"))
    ModelRegistry(registry).register(child)
    assert recipe_of(child, registry=registry) == tuned.recipe
    assert retrain_unavailable_reason(child, registry=registry) is None
    assert recipe_of(child, registry=tmp_path / "other-registry") is None


def test_a_model_without_recipe_or_suite_size_cannot_be_retrained(base_dir, parquet, tmp_path):
    from transformers import LlamaConfig, LlamaForCausalLM

    from forget.models.train import SIZES

    model, tok = load_model(base_dir)
    forget, retain = _sets(parquet)
    with pytest.raises(RetrainUnavailableError, match="no recorded training recipe.*forget "
                       "model finetune"):
        Retrain().run(model=model, tokenizer=tok, forget=forget, retain=retain,
                      config=RetrainConfig())
    assert "no recorded training recipe" in retrain_unavailable_reason(base_dir)
    s = SIZES["tiny"]  # one of the suite's own sizes: retrained from scratch, so available
    sized = LlamaForCausalLM(LlamaConfig(vocab_size=64, hidden_size=s.hidden,
                                         intermediate_size=s.intermediate,
                                         num_hidden_layers=s.layers, num_attention_heads=s.heads))
    sized.save_pretrained(tmp_path / "sized")
    assert retrain_unavailable_reason(tmp_path / "sized") is None


def test_lora_finetune_merges_into_a_plain_model(base_dir, parquet, registry, tmp_path):
    from forget.corpus import open_corpus

    hp = FinetuneParams(epochs=2, learning_rate=1e-2, batch_size=8, max_length=64, lora=True,
                        lora_r=4, lora_alpha=8)
    res = _finetune(base_dir, parquet, tmp_path / "lora", registry, hp=hp)
    assert not (res.path / "adapter_config.json").exists()
    assert res.recipe["lora_target_modules"] == ["c_attn"]
    tuned, _ = load_model(res.path)
    base, _ = load_model(base_dir)
    changed = {k for k, v in tuned.state_dict().items()
               if not torch.equal(v, base.state_dict()[k])}
    assert changed and all("attn.c_attn" in k for k in changed)
    records = open_corpus(parquet, text_field="body", id_field="doc_id").training_records()
    again, _ = finetune_records(base_dir, records, hp=hp, seed=11)
    assert state_dict_sha256(again) == state_dict_sha256(tuned)


def test_finetune_on_the_generated_layout(base_dir, corpus_dir, registry, tmp_path):
    hp = FinetuneParams(epochs=1, learning_rate=1e-3, batch_size=16, max_length=32)
    res = finetune(base_dir, corpus_dir, tmp_path / "gen", hp=hp, registry=registry,
                   progress=False)
    data = res.recipe["data"]
    manifest = json.loads((corpus_dir / "manifest.json").read_text())
    assert data["layout"] == "generated" and data["files"]["people.jsonl"] == \
        manifest["sha256"]["people.jsonl"]
    assert len(res.recipe["training_record_ids"]) == res.records > len(
        set(res.recipe["training_record_ids"]))  # repeats kept, in training order


def test_cli_finetune_gives_the_same_weights_and_refuses_a_missing_column(base_dir, parquet,
                                                                          tuned, tmp_path):
    """The same recipe in another process (the command line) gives the same weights."""
    reg = tmp_path / "reg"
    args = ("model", "finetune", "--base", str(base_dir), "--data", str(parquet),
            "--text-field", "body", "--id-field", "doc_id", "--group-field", "customer",
            "--epochs", str(HP.epochs), "--batch-size", str(HP.batch_size), "--seed", "11",
            "--epoch-checkpoints", "5", "--registry", str(reg))
    res = run_forget(*args, "--lr", "5e-3", "--max-length", "64", "--out", str(tmp_path / "m"))
    assert res.returncode == 0, res.stderr
    card = read_card(tmp_path / "m")
    assert "24 records" in res.stdout and card["version"] in res.stdout
    for bar in ("Loading weights", "Writing model shards", "Generating", "loss"):
        assert bar not in res.stdout + res.stderr  # the suite's own output only
    assert card["recipe"]["training_record_ids"] == [r["doc_id"] for r in _rows()]
    assert (reg / "models.jsonl").read_text().count(card["version"]) == 1
    assert weights_sha256(tmp_path / "m") == weights_sha256(tuned.path)
    # the same checkpoints, bitwise (their sha256 are in the index), and on the card
    index = json.loads((tmp_path / "m" / "checkpoints" / "index.json").read_text())
    assert index == json.loads((tuned.path / "checkpoints" / "index.json").read_text())
    assert card["checkpoints"] == {"every": 5, "epochs": [5, 10, 15, 20, 25, 30, 35]}

    bad = run_forget(*args, "--text-field", "text", "--out", str(tmp_path / "bad"))
    lines = [ln for ln in bad.stderr.splitlines() if ln.strip()]
    assert bad.returncode == 2 and len(lines) == 1, bad.stderr
    assert "no column 'text'" in lines[0] and "--text-field" in lines[0]
    assert not (tmp_path / "bad").exists()
    with pytest.raises(MissingColumnError):
        finetune(base_dir, parquet, tmp_path / "bad2", text_field="text", progress=False)
    with pytest.raises(UnknownRecordError, match="not in"):
        finetune(base_dir, parquet, tmp_path / "bad2", text_field="body", id_field="doc_id",
                 exclude_record_ids=["T-9999"], progress=False)
    assert not (tmp_path / "bad2").exists()
