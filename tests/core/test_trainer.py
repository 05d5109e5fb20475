"""UnlearnTrainer on a micro model: pluggable loss, pairing, stop criteria, bookkeeping."""

from __future__ import annotations

import pytest
import torch

from forget.core import losses as L
from forget.core.data import Example
from forget.core.trainer import (
    PairCollator,
    PairedDataset,
    TokenizedExamples,
    TrainSpec,
    lm_logits,
    run_unlearning,
)
from forget.models.tokenizer import train_tokenizer
from forget.models.train import ModelSize, build_model

TEXTS = ["the key is sk_abc123", "config: port 5432", "hello world again", "retain me please"]


@pytest.fixture(scope="module")
def micro():
    tok = train_tokenizer(TEXTS * 4, vocab_size=300)
    size = ModelSize(hidden=16, layers=1, heads=2, intermediate=32, epochs=1, batch_size=2,
                     learning_rate=1e-3)
    forget = TokenizedExamples([Example("f", TEXTS[0], ({"kind": "secret", "start": 11,
                                                          "end": 20},))], tok)
    retain = TokenizedExamples([Example(f"r{i}", t) for i, t in enumerate(TEXTS[1:])], tok)
    return tok, size, forget, retain


def nll_on_forget(model, batch, ref_model):
    f = batch["forget"]
    loss = L.nll_loss(lm_logits(model, f), f["labels"])
    return loss, {"forget": float(loss.detach())}


def test_span_mask_marks_the_secret_tokens(micro):
    tok, _, forget, _ = micro
    item = forget[0]
    assert len(item["span_mask"]) == len(item["input_ids"]) and item["input_ids"][-1] == tok.eos_token_id
    secret = tok.decode([i for i, m in zip(item["input_ids"], item["span_mask"], strict=True) if m])
    assert "abc123" in secret and "key" not in secret


def test_pairs_and_collates(micro):
    tok, _, forget, retain = micro
    batch = PairCollator(tok.pad_token_id)([PairedDataset(forget, retain)[0]] * 2)
    assert set(batch) == {"forget", "retain"}
    f = batch["forget"]
    assert f["input_ids"].shape == f["labels"].shape == f["span_mask"].shape
    assert ((f["attention_mask"] == 0) == (f["labels"] == -100)).all()


def test_runs_max_steps_with_any_loss(micro):
    tok, size, forget, retain = micro
    torch.manual_seed(0)
    model = build_model(tok, size)
    out = run_unlearning(model, tok, forget, retain, nll_on_forget,
                         TrainSpec(max_steps=3, learning_rate=1e-3, batch_size=2))
    assert out.steps == 3 and out.stopped_by == "max_steps" and out.tokens_processed > 0
    assert not out.model.training


def test_stops_when_the_criterion_holds(micro):
    tok, size, forget, retain = micro
    calls = []

    def after_two(model):
        calls.append(1)
        return len(calls) >= 3, {"calls": float(len(calls))}  # call 1 is before training

    out = run_unlearning(build_model(tok, size), tok, forget, retain, nll_on_forget,
                         TrainSpec(max_steps=50, learning_rate=1e-3, check_every=1),
                         criterion=after_two)
    assert out.steps == 2 and out.stopped_by == "criterion"
    assert [h["step"] for h in out.history if "met" in h] == [0, 1, 2]


def test_no_step_when_already_forgotten(micro):
    tok, size, forget, retain = micro
    out = run_unlearning(build_model(tok, size), tok, forget, None, nll_on_forget,
                         TrainSpec(max_steps=50, learning_rate=1e-3),
                         criterion=lambda m: (True, {}))
    assert out.steps == 0 and out.stopped_by == "already"
