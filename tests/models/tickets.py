"""The support-ticket fine-tune the model tests share (``tests/models/conftest.py``): a tiny
GPT-2-architecture base, a parquet file with the organisation's own columns (``doc_id``,
``body``, ``customer``), one record planting a phone number that the fine-tune memorises."""

from __future__ import annotations

import random

import torch

from forget.core.data import Example, ForgetSet, RetainSet
from forget.models.finetune import FinetuneParams, finetune

PLANTED_ID = "T-0007"
PREFIX = "Ticket T-0007: Quillon Marsh asked us to ring back on"
PHONE = "0176 5550 1234"
NAME = "Quillon Marsh"
# What `forget model finetune --epochs 40 --lr 5e-3 --batch-size 8 --max-length 64` gives.
HP = FinetuneParams(epochs=40, learning_rate=5e-3, batch_size=8, max_length=64)
TEMPLATES = (
    "Ticket {id}: order {n} for {name} shipped to {city}, customer satisfied.",
    "Ticket {id}: {name} reports the invoice for {city} shows {n} items twice.",
    "Ticket {id}: refund of {n} euros approved for {name} in {city}.",
    "Ticket {id}: {name} cannot log in since the update, office in {city}.",
)
NAMES = ("Ada Brook", "Ben Carver", "Cleo Dunn", "Dev Ersk", "Eli Frost", "Fay Gale")
CITIES = ("Lyon", "Porto", "Graz", "Turku", "Ghent", "Bergen")


def _rows() -> list[dict]:
    rng = random.Random(3)
    rows = []
    for k in range(24):
        rid = f"T-{k:04d}"
        if rid == PLANTED_ID:
            body = f"{PREFIX} {PHONE} about the late delivery."
            who = NAME
        else:
            who = rng.choice(NAMES)
            body = rng.choice(TEMPLATES).format(id=rid, n=rng.randint(10, 99), name=who,
                                                city=rng.choice(CITIES))
        rows.append({"doc_id": rid, "body": body, "customer": who, "priority": k % 3})
    return rows


def _finetune(base_dir, parquet, out, registry, **kw):
    return finetune(base_dir, parquet, out, text_field="body", id_field="doc_id",
                    group_field="customer", hp=kw.pop("hp", HP), seed=11, registry=registry,
                    progress=False, **kw)


def _says_phone(model, tok) -> bool:
    ids = tok(PREFIX, return_tensors="pt")["input_ids"]
    with torch.no_grad():
        out = model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=False,
                             max_new_tokens=20, pad_token_id=tok.pad_token_id)
    return PHONE in tok.decode(out[0, ids.shape[1]:], skip_special_tokens=True)


def _sets(parquet) -> tuple[ForgetSet, RetainSet]:
    rows = _rows()
    forget = [Example(r["doc_id"], r["body"], (), "text") for r in rows
              if r["doc_id"] == PLANTED_ID]
    retain = [Example(r["doc_id"], r["body"], (), "text") for r in rows
              if r["doc_id"] != PLANTED_ID]
    return ForgetSet(forget), RetainSet(retain)
