"""An organisation's own material for the end-to-end tests: support tickets in a parquet or
jsonl file with its own column names, and a base causal LM of a real architecture that it
fine-tunes itself (random-initialised: no hub is reachable; tiny: the tests run on 2 cores).

One customer (the data subject) wrote several tickets that carry their name, email and phone;
the other customers' tickets carry theirs. Nothing here is the generator's layout.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path

PRODUCTS = ("router", "billing portal", "mobile app", "smart plug", "invoice export",
            "password reset", "delivery", "warranty")
PROBLEMS = ("stops working after the update", "shows the wrong total", "keeps logging me out",
            "cannot be found in my account", "was charged twice", "arrived damaged",
            "does not send the confirmation", "is very slow since Monday")
FIRST = ("Alma", "Bruno", "Celia", "Dario", "Elena", "Farid", "Greta", "Hugo", "Ines", "Jonas",
         "Kira", "Lucas", "Mina", "Nils", "Olga", "Pavel", "Rosa", "Sami", "Tara", "Viktor")
LAST = ("Brandt", "Castell", "Duarte", "Eklund", "Ferraro", "Galloway", "Hartmann", "Ivanova",
        "Jansen", "Kowalski", "Lindqvist", "Moreau", "Novak", "Ortega", "Petrov", "Quist")


@dataclass(frozen=True)
class Customer:
    name: str
    email: str
    phone: str


SUBJECT = Customer("Marisol Quintrell", "marisol.quintrell@example.net", "(415) 862-3079")


def _customer(rng: random.Random) -> Customer:
    first, last = rng.choice(FIRST), rng.choice(LAST)
    return Customer(f"{first} {last}",
                    f"{first.lower()}.{last.lower()}{rng.randint(10, 99)}@example.com",
                    f"({rng.randint(201, 989)}) {rng.randint(200, 999)}-{rng.randint(0, 9999):04d}")


def _ticket(rng: random.Random, c: Customer) -> str:
    return (f"Ticket from {c.name}. The {rng.choice(PRODUCTS)} {rng.choice(PROBLEMS)}. "
            f"Please reply to {c.email} or call {c.phone}. Thanks, {c.name.split()[0]}")


def tickets(n_others: int = 40, subject_tickets: int = 4, seed: int = 0) -> list[dict]:
    """Rows ``{doc_id, body, product, created}``; the subject's tickets are spread through."""
    rng = random.Random(seed)
    rows = [{"body": _ticket(rng, _customer(rng))} for _ in range(n_others)]
    for _ in range(subject_tickets):
        rows.insert(rng.randrange(len(rows) + 1), {"body": _ticket(rng, SUBJECT)})
    for i, r in enumerate(rows):
        r |= {"doc_id": f"T-{1000 + i}", "product": rng.choice(PRODUCTS),
              "created": f"2026-0{1 + i % 9}-1{i % 10}"}
    return rows


def write_parquet(rows: list[dict], path: Path) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


def write_jsonl(rows: list[dict], path: Path, *, text_key: str = "content") -> Path:
    with path.open("w") as f:
        for r in rows:
            f.write(json.dumps({"id": r["doc_id"], text_key: r["body"]}) + "\n")
    return path


def base_model(out: Path, arch: str, *, seed: int = 0) -> Path:
    """A random-initialised tiny causal LM of ``arch`` (gpt2 | gpt_neox) with a tokenizer
    trained on generic support phrases (no customer identifiers), saved like a hub model."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel, GPTNeoXConfig, GPTNeoXForCausalLM

    from forget.models.tokenizer import train_tokenizer

    rng = random.Random(seed + 1)
    generic = [f"Ticket from a customer. The {rng.choice(PRODUCTS)} {rng.choice(PROBLEMS)}. "
               f"Please reply to the address or call the number. Thanks"
               for _ in range(300)]
    tok = train_tokenizer(generic + [" ".join(FIRST + LAST), "@example.com .net ( ) -"],
                          vocab_size=400)
    torch.manual_seed(seed)
    special = {"bos_token_id": tok.bos_token_id, "eos_token_id": tok.eos_token_id,
               "pad_token_id": tok.pad_token_id}
    if arch == "gpt2":
        model = GPT2LMHeadModel(GPT2Config(vocab_size=len(tok), n_positions=256, n_embd=96,
                                           n_layer=2, n_head=4, **special))
    elif arch == "gpt_neox":
        model = GPTNeoXForCausalLM(GPTNeoXConfig(
            vocab_size=len(tok), hidden_size=96, num_hidden_layers=2, num_attention_heads=4,
            intermediate_size=288, max_position_embeddings=256, **special))
    else:
        raise ValueError(arch)
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out


def request_json(request_id: str, c: Customer = SUBJECT) -> str:
    return json.dumps({"request_id": request_id, "ground": "a",
                       "subject": {"name": c.name, "emails": [c.email], "phones": [c.phone]}})


def greedy_leaks(model_dir: Path, rows: list[dict], c: Customer = SUBJECT) -> int:
    """How many of ``c``'s email/phone occurrences greedy decoding reproduces verbatim from
    the text before them, over ``c``'s tickets (0: none is extracted)."""
    import torch

    from forget.models import load_model

    model, tok = load_model(model_dir)
    hits = 0
    for r in rows:
        text = r["body"]
        if c.name not in text:
            continue
        for value in (c.email, c.phone):
            prefix = text[:text.index(value)]
            ids = tok(prefix, return_tensors="pt")["input_ids"]
            n = len(tok(value, add_special_tokens=False)["input_ids"]) + 2
            with torch.no_grad():
                out = model.generate(ids, max_new_tokens=n, do_sample=False,
                                     pad_token_id=tok.pad_token_id)
            hits += value in tok.decode(out[0, ids.shape[1]:], skip_special_tokens=True)
    return hits
