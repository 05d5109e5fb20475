"""dp_retrain: DP-SGD retraining through Opacus on the tiny model.

epsilon is the accountant's for the recorded settings; a canary seen 5 times that the
non-private model extracts is not extracted after DP retraining at epsilon = 8; DP-LoRA runs.
"""

from __future__ import annotations

import pytest

from audits.extraction import greedy_hits, identifier_prompts
from forget.core import get_method, subject_sets
from forget.errors import InvalidInputError
from forget.methods.dp_retrain import DPRetrainConfig, sequence_mean_loss
from forget.models import load_model, state_dict_sha256


@pytest.fixture(scope="module")
def dp_run(corpus, tiny_model_dir, trained_subject):
    model, tok = load_model(tiny_model_dir)
    fset, rset = subject_sets(corpus, trained_subject)
    state = state_dict_sha256(model)
    res = get_method("dp_retrain").run(model=model, tokenizer=tok, forget=fset, retain=rset,
                                       config=DPRetrainConfig(target_epsilon=8.0, epochs=2,
                                                              batch_size=16))
    return {"model": model, "tok": tok, "result": res, "state": state, "forget": fset,
            "retain": rset}


def test_epsilon_is_what_the_opacus_accountant_gives(dp_run):
    from opacus.accountants import RDPAccountant
    from opacus.accountants.utils import get_noise_multiplier

    f = dp_run["result"].formal_guarantee
    acc = RDPAccountant()
    acc.history = [(f["noise_multiplier"], f["sample_rate"], f["steps"])]
    assert f["epsilon"] == pytest.approx(acc.get_epsilon(delta=f["delta"]), rel=1e-12)
    assert f["epsilon"] <= 8.0 * 1.01 and f["delta"] == 1e-5
    assert f["noise_multiplier"] == pytest.approx(get_noise_multiplier(
        target_epsilon=8.0, target_delta=1e-5, sample_rate=f["sample_rate"], epochs=2,
        accountant="rdp"))
    n = sum(1 for e in dp_run["retain"].examples)
    assert f["n"] == n and f["steps"] == dp_run["result"].steps > 0
    assert f["sample_rate"] == pytest.approx(1 / -(-n // 16))  # 1 / batches per epoch
    assert f["max_grad_norm"] == 1.0 and f["kind"] == "differential_privacy"


def test_guarantee_text_says_what_dp_does_and_does_not_give(dp_run):
    text = dp_run["result"].guarantee
    assert "k times" in text and "not deletion of data already in a non-DP model" in text
    assert f"{dp_run['result'].formal_guarantee['epsilon']:.4g}" in text


def test_canary_seen_5_times_is_not_extracted_after_dp_retraining(dp_run, corpus):
    model, tok = dp_run["model"], dp_run["tok"]
    prompts = [p for c in corpus.canaries if c["split"] == "train" and c["repeats"] == 5
               for p in identifier_prompts(c["canary_id"], c["text"], c["spans"])]
    leaked = [p for p, hit in zip(prompts, greedy_hits(model, tok, prompts), strict=True) if hit]
    assert leaked, "control: the non-private tiny model must extract a 5-times canary"
    assert not any(greedy_hits(dp_run["result"].model, tok, leaked))
    assert state_dict_sha256(model) == dp_run["state"]  # the original is untouched


def test_dp_lora_fine_tunes_a_base_that_never_saw_the_data(dp_run, tmp_path):
    from forget.models import save_model
    from forget.models.train import SIZES, build_model

    tok = dp_run["tok"]
    base = build_model(tok, SIZES["tiny"], seed=3)  # a checkpoint that never saw the corpus
    save_model(base, tok, tmp_path / "base")
    res = get_method("dp_retrain").run(
        model=dp_run["model"], tokenizer=tok, forget=dp_run["forget"], retain=dp_run["retain"],
        config=DPRetrainConfig(target_epsilon=3.0, epochs=1, base_model=str(tmp_path / "base"),
                               lora=True, lora_rank=4))
    f = res.formal_guarantee
    assert f["lora"] and f["base_model"] and f["epsilon"] <= 3.0 * 1.01
    assert not hasattr(res.model, "peft_config")  # merged back into a plain model
    assert state_dict_sha256(res.model) != state_dict_sha256(base)
    assert "fine-tuned from a base checkpoint" in res.guarantee


@pytest.mark.parametrize("kwargs, match", [
    ({"lora": True}, "needs base_model"),
    ({"accountant": "moments"}, "unknown accountant"),
    ({"target_epsilon": 0.0}, "target_epsilon"),
    ({"epochs": 0}, "epochs"),
])
def test_config_refuses_bad_values(kwargs, match):
    with pytest.raises(InvalidInputError, match=match):
        DPRetrainConfig(**kwargs)


def test_delta_must_be_below_one_over_n(dp_run):
    with pytest.raises(InvalidInputError, match="not below 1/n"):
        get_method("dp_retrain").run(model=dp_run["model"], tokenizer=dp_run["tok"],
                                     forget=dp_run["forget"], retain=dp_run["retain"],
                                     config=DPRetrainConfig(target_delta=0.5))


def test_sequence_mean_loss_weights_each_sequence_equally():
    import torch

    logits = torch.zeros(2, 4, 3)  # uniform predictions: every token costs ln 3
    ids = torch.tensor([[0, 1, 2, 0], [0, 1, 0, 0]])
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0]])
    assert float(sequence_mean_loss(logits, ids, mask)) == pytest.approx(float(torch.log(
        torch.tensor(3.0))))
    logits[0, 0, 1] = 5.0  # the first sequence's first target is now likely
    per_seq0 = (torch.nn.functional.cross_entropy(logits[0, :3], ids[0, 1:]).item())
    assert float(sequence_mean_loss(logits, ids, mask)) == pytest.approx(
        (per_seq0 + float(torch.log(torch.tensor(3.0)))) / 2)
