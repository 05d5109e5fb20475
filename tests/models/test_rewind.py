"""``rewind`` (issue 23): epoch checkpoints of a fine-tune, and a deletion that rewinds the run
to one and trains the last epochs again without the record.

Uses the fine-tune of ``test_finetune.py`` (a tiny GPT-2-architecture base, a parquet file of
support tickets, one of which plants a phone number): 40 epochs, a checkpoint every 5.
"""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from forget.errors import MalformedDataError, RewindUnavailableError
from forget.methods.rewind import Rewind, RewindConfig, lineage
from forget.models import load_model, read_card
from forget.models.io import state_dict_sha256
from tests.models.tickets import HP, _finetune, _says_phone, _sets


def test_the_finetune_keeps_its_epoch_checkpoints(tuned):
    index = json.loads((tuned.path / "checkpoints" / "index.json").read_text())
    assert [e["epoch"] for e in index["entries"]] == [5, 10, 15, 20, 25, 30, 35]
    assert [e["step"] for e in index["entries"]] == [15, 30, 45, 60, 75, 90, 105]  # batch 8
    assert index["schedule"]["total_steps"] == 120 and index["epochs"] == HP.epochs
    assert read_card(tuned.path)["checkpoints"]["epochs"] == [5, 10, 15, 20, 25, 30, 35]


def test_rewinding_to_the_start_is_the_recipe_retrain(tuned, tuned_without, parquet):
    """All 40 epochs again: the fine-tune without the record, bitwise."""
    model, tok = load_model(tuned.path)
    forget, retain = _sets(parquet)
    res = Rewind().run(model=model, tokenizer=tok, forget=forget, retain=retain,
                       config=RewindConfig(rewind_epochs=40))
    reference, _ = load_model(tuned_without.path)
    assert state_dict_sha256(res.model) == state_dict_sha256(reference)
    assert res.config["resolved"]["from_epoch"] == 0 and res.steps == 120
    assert not _says_phone(res.model, tok)


def _at(tuned, base_dir, epoch: int):
    """The fine-tune as it was after ``epoch`` epochs (its checkpoint on the base)."""
    from forget.models.checkpoints import load_entry, read_index

    model, _ = load_model(base_dir)
    entry = next(e for e in read_index(tuned.path)["entries"] if e["epoch"] == epoch)
    model.load_state_dict(load_entry(tuned.path, entry), strict=False)
    return model.eval()


def test_rewinding_forgets_only_from_before_the_memory(tuned, base_dir, parquet):
    """Measured: the fine-tune gives the planted phone number back by greedy decoding from
    epoch 35 on, not at epoch 30. Rewinding 10 epochs (from 30, a quarter of the steps) gives a
    model that does not say it; rewinding 5 (from 35) keeps it: the last epochs on the retain
    set, at the schedule's tail, do not remove a memory the checkpoint holds. Which is why the
    calibrated audit, not the share of epochs, decides (bench/frontier.py)."""
    model, tok = load_model(tuned.path)
    assert _says_phone(model, tok)
    assert _says_phone(_at(tuned, base_dir, 35), tok)
    assert not _says_phone(_at(tuned, base_dir, 30), tok)
    forget, retain = _sets(parquet)
    res10 = Rewind().run(model=model, tokenizer=tok, forget=forget, retain=retain,
                         config=RewindConfig(rewind_epochs=10))
    assert res10.config["resolved"] == {"from_epoch": 30, "epochs": 40, "from_step": 90,
                                        "share_of_epochs": 0.25}
    assert res10.steps == 10 * 3  # 23 records left: 3 batches per epoch
    assert "empirical" in res10.guarantee
    assert not _says_phone(res10.model, tok)
    res5 = Rewind().run(model=model, tokenizer=tok, forget=forget, retain=retain,
                        config=RewindConfig(rewind_epochs=5))
    assert res5.steps == 15 and _says_phone(res5.model, tok)
    # the latest checkpoint at least rewind_epochs before the end: 12 -> epoch 28 -> 25
    from forget.models.checkpoints import pick, read_index

    assert pick(read_index(tuned.path), 40 - 12)["epoch"] == 25
    assert state_dict_sha256(model) == state_dict_sha256(load_model(tuned.path)[0])  # untouched


def test_noise_is_added_after_the_rewind(tuned, parquet):
    model, tok = load_model(tuned.path)
    forget, retain = _sets(parquet)
    plain = Rewind().run(model=model, tokenizer=tok, forget=forget, retain=retain,
                         config=RewindConfig(rewind_epochs=10))
    noisy = Rewind().run(model=model, tokenizer=tok, forget=forget, retain=retain,
                         config=RewindConfig(rewind_epochs=10, noise_std=1e-3))
    gaps = [(a - b).std().item() for a, b in zip(noisy.model.parameters(),
                                                 plain.model.parameters(), strict=True)]
    assert all(abs(g - 1e-3) < 3e-4 for g in gaps if g)  # the noise, not another training run
    with pytest.raises(ValueError, match="noise_std must be >= 0"):
        RewindConfig(noise_std=-1)


def test_a_rewound_model_rewinds_the_same_run_and_another_method_stops_it(
        tuned, tuned_without, parquet, tmp_path):
    from forget.models.io import save_model
    from forget.models.registry import new_card

    model, tok = load_model(tuned.path)
    forget, retain = _sets(parquet)
    res = Rewind().run(model=model, tokenizer=tok, forget=forget, retain=retain,
                       config=RewindConfig(rewind_epochs=5))
    rewound = save_model(res.model, tok, tmp_path / "rewound", extra=res.save_extra,
                         card=new_card(kind="unlearned", method="rewind"))
    assert not (rewound / "checkpoints").exists()  # it points at the run's, not a copy
    assert lineage(str(rewound)).folder == tuned.path.resolve()
    again = Rewind().run(model=load_model(rewound)[0], tokenizer=tok, forget=forget,
                         retain=retain, config=RewindConfig(rewind_epochs=5))
    assert state_dict_sha256(again.model) == state_dict_sha256(res.model)  # the same run
    with torch.no_grad():
        next(model.parameters()).add_(1e-3)  # stands for npo's update
    npo = save_model(model, tok, tmp_path / "by-npo",
                     card=new_card(kind="unlearned", method="npo"))
    with pytest.raises(RewindUnavailableError, match="changed by 'npo'.*use retrain"):
        Rewind().run(model=load_model(npo)[0], tokenizer=tok, forget=forget, retain=retain)
    with pytest.raises(RewindUnavailableError, match="kept no epoch checkpoints.*"
                       "--epoch-checkpoints"):
        Rewind().run(model=load_model(tuned_without.path)[0], tokenizer=tok, forget=forget,
                     retain=retain)
    moved = tmp_path / "moved"
    shutil.copytree(rewound, moved)
    pointer = json.loads((moved / "rewound_from.json").read_text())
    (moved / "rewound_from.json").write_text(json.dumps(pointer | {"folder": str(tmp_path)}))
    with pytest.raises(RewindUnavailableError, match="no longer at"):
        lineage(str(moved))


def test_a_changed_checkpoint_is_refused(tuned, parquet, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(tuned.path, copy)
    ckpt = copy / "checkpoints" / "epoch-0030.safetensors"
    data = bytearray(ckpt.read_bytes())
    data[-1] ^= 1
    ckpt.write_bytes(bytes(data))
    model, tok = load_model(copy)
    forget, retain = _sets(parquet)
    with pytest.raises(MalformedDataError, match="does not match the sha256"):
        Rewind().run(model=model, tokenizer=tok, forget=forget, retain=retain,
                     config=RewindConfig(rewind_epochs=10))
    (copy / "checkpoints" / "index.json").write_text("{")
    with pytest.raises(MalformedDataError, match="not a checkpoint index"):
        Rewind().run(model=model, tokenizer=tok, forget=forget, retain=retain)


def test_a_lora_finetune_rewinds_its_adapters(base_dir, parquet, registry, tmp_path):
    from forget.models.finetune import FinetuneParams

    hp = FinetuneParams(epochs=3, learning_rate=1e-2, batch_size=8, max_length=64, lora=True,
                        lora_r=4, lora_alpha=8)
    res = _finetune(base_dir, parquet, tmp_path / "lora", registry, hp=hp, checkpoint_every=1)
    from safetensors.torch import load_file

    saved = load_file(str(res.path / "checkpoints" / "epoch-0002.safetensors"))
    assert saved and all("lora_" in k for k in saved)  # the adapters only
    model, tok = load_model(res.path)
    forget, retain = _sets(parquet)
    out = Rewind().run(model=model, tokenizer=tok, forget=forget, retain=retain,
                       config=RewindConfig(rewind_epochs=1))
    base, _ = load_model(base_dir)
    changed = {k for k, v in out.model.state_dict().items()
               if not torch.equal(v, base.state_dict()[k])}
    assert changed and all("attn.c_attn" in k for k in changed)  # merged: a plain model
    assert out.steps == 3 and out.config["resolved"]["from_epoch"] == 2
