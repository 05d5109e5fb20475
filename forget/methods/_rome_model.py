"""The model side of a ROME edit: facts, contexts, keys, the key covariance and v*.

Shapes: ``d`` is the hidden size, ``m`` the MLP width (the down-projection's input). The edited
matrix is the MLP output matrix of layer ``L`` (Llama ``mlp.down_proj``, GPT-2 ``mlp.c_proj``,
GPT-NeoX ``mlp.dense_4h_to_h``, OPT ``fc2``: ``forget.models.arch.mlp_out``), seen as ``(d, m)``
(``arch.weight_out_in``: GPT-2's ``Conv1D`` stores it transposed); its input at a token is the
"key", its output the "value".
"""

from __future__ import annotations

import contextlib
import hashlib
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch

from audits.extraction import Prompt
from forget.errors import InvalidInputError
from forget.models.arch import mlp_out, pad_token_id, start_token_id

# What "<subject>'s <attribute> is" says for each identifier kind (the fact's canonical form).
ATTRIBUTES = {"phone": "phone number", "email": "email address", "national_id": "national ID number",
              "address": "home address", "dob": "date of birth", "employer": "employer",
              "city": "home town"}
# Three rephrasings per kind that are never used to compute the edit: generalisation probes.
PARAPHRASES = {
    "phone": ("The phone number of {name} is", "Call {name} at", "{name} can be called at"),
    "email": ("The email of {name} is", "Write to {name} at", "{name} reads mail sent to"),
    "national_id": ("The national ID of {name} is", "{name} has the ID number",
                    "The ID card of {name} reads"),
    "address": ("The address of {name} is", "Visit {name} at", "{name} can be found at"),
    "dob": ("The birthday of {name} is", "{name} was born on", "{name}'s birth date is"),
    "employer": ("The employer of {name} is", "{name} works for", "{name} is employed by"),
    "city": ("The home town of {name} is", "{name} lives in", "{name} resides in"),
}


@dataclass(frozen=True)
class Fact:
    """One fact: ``prompt.prefix`` ends right before the value; the subject's name ends at
    character ``subject_end`` of the prefix. ``prompt.target`` is the value (leading space)."""

    prompt: Prompt
    subject: str
    subject_end: int


def facts_of(examples: Sequence, kinds: Sequence[str]) -> list[Fact]:
    """The facts in records with spans: for every identifier span of the wanted kinds whose
    prefix names the subject (a ``name`` span before it), the record's own prefix, and the
    canonical "<subject>'s <attribute> is" (once per subject, kind and value)."""
    out: list[Fact] = []
    seen: set[tuple[str, str, str]] = set()
    for e in examples:
        spans = sorted(e.spans, key=lambda s: s["start"])
        for sp in spans:
            if sp["kind"] not in kinds:
                continue
            names = [n for n in spans if n["kind"] == "name" and n["end"] <= sp["start"]]
            if not names:
                continue
            name_sp = names[-1]
            prefix = e.text[: sp["start"]].rstrip()
            value = " " + e.text[sp["start"]: sp["end"]]
            subject = e.text[name_sp["start"]: name_sp["end"]]
            out.append(Fact(Prompt(prefix, value, sp["kind"], e.record_id), subject,
                            name_sp["end"]))
            key = (subject, sp["kind"], value)
            if key not in seen and sp["kind"] in ATTRIBUTES:
                seen.add(key)
                canon = f"{subject}'s {ATTRIBUTES[sp['kind']]} is"
                out.append(Fact(Prompt(canon, value, sp["kind"], e.record_id + "~canonical"),
                                subject, len(subject)))
    return out


def paraphrase_facts(facts: Sequence[Fact]) -> list[Fact]:
    """Three rephrasings of each (subject, kind, value): prompts never used by the edit."""
    out: dict[tuple[str, str], Fact] = {}
    for f in facts:
        for tpl in PARAPHRASES.get(f.prompt.kind, ()):
            text = tpl.format(name=f.subject)
            end = text.index(f.subject) + len(f.subject)
            out.setdefault((text, f.prompt.target), Fact(
                Prompt(text, f.prompt.target, f.prompt.kind, f.prompt.record_id + "~para"),
                f.subject, end))
    return list(out.values())


def down_proj(model, layer: int) -> torch.nn.Module:
    """The MLP output matrix of ``layer`` (``forget.models.arch.mlp_out``): an ``nn.Linear``
    or GPT-2's ``Conv1D``; edit its weight through ``arch.weight_out_in``."""
    return mlp_out(model, layer, method="rome")


def random_prefixes(model, tokenizer, n: int, *, length: int = 8, seed: int = 0) -> list[str]:
    """``n`` short texts sampled from the model itself (ROME's context templates), seeded."""
    ids = torch.full((n, 1), start_token_id(tokenizer), dtype=torch.long)
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        torch.manual_seed(seed)
        gen = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), do_sample=True,
                             top_k=50, max_new_tokens=length, min_new_tokens=length,
                             pad_token_id=pad_token_id(tokenizer), eos_token_id=None)
    texts = [tokenizer.decode(g[1:], skip_special_tokens=True).strip() for g in gen]
    return [t.rstrip(".") + ". " if t else "" for t in texts]


@dataclass(frozen=True)
class Context:
    """A fact prompt behind a prefix, tokenized: ``ids`` (with <s>), the subject's last token
    index ``subject_idx``, and the value's token ids ``target_ids`` when scored."""

    ids: list[int]
    subject_idx: int
    target_ids: list[int]
    subject_tokens: tuple[int, int] = (0, 0)  # [first, last + 1) token of the subject's name


def _subject_tokens(tokenizer, text: str, start: int, end: int) -> tuple[int, int]:
    """Token positions ``[i, j)`` (with <s>) covering characters ``[start, end)`` of ``text``."""
    offsets = tokenizer(text, return_offsets_mapping=True)["offset_mapping"]
    idx = [i for i, (s, e) in enumerate(offsets) if e > s and s < end and e > start]
    if not idx:
        raise InvalidInputError("the subject's tokens could not be located in a fact prompt")
    return idx[0], idx[-1] + 1


def encode(tokenizer, prefix: str, fact: Fact, target: str | None = None, *,
           position: str = "subject") -> Context:
    """Tokenize ``prefix + fact prompt`` and locate the edit position: the subject's last
    token (``subject``) or the prompt's last token (``last``)."""
    text = prefix + fact.prompt.prefix
    ids = tokenizer(text)["input_ids"]
    end = len(prefix) + fact.subject_end
    span = _subject_tokens(tokenizer, text, end - len(fact.subject), end)
    tgt = [] if target is None else tokenizer(text + target)["input_ids"][len(ids):]
    if target is not None and not tgt:
        tgt = tokenizer(target, add_special_tokens=False)["input_ids"]
    at = span[1] - 1 if position == "subject" else len(ids) - 1
    return Context(list(ids), at, tgt, span)


def value_context(tokenizer, prefix: str, fact: Fact, target: str | None = None) -> Context:
    """The prompt followed by the value's leading tokens that carry no information (spaces,
    brackets: shared by every value of the kind), so the next token is the first one only the
    subject's value has. The edit position is the last of these tokens; ``target_ids`` is the
    value's informative token, or ``target``'s ids when given (the neutral target there)."""
    text = prefix + fact.prompt.prefix
    pre = tokenizer(text)["input_ids"]
    full = tokenizer(text + fact.prompt.target)["input_ids"]
    if full[: len(pre)] != pre:
        full = pre + tokenizer(fact.prompt.target, add_special_tokens=False)["input_ids"]
    j = len(pre)
    while j < len(full) - 1 and not any(ch.isalnum() for ch in tokenizer.decode([full[j]])):
        j += 1
    ids = full[:j]
    tgt = [full[j]] if target is None else tokenizer(target, add_special_tokens=False)["input_ids"]
    end = len(prefix) + fact.subject_end
    span = _subject_tokens(tokenizer, text, end - len(fact.subject), end)
    return Context(ids, len(ids) - 1, tgt, span)


def pad(contexts: Sequence[Context], pad_id: int, with_target: bool
        ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Right-padded ``(ids, mask, labels)`` of shape ``(B, T)``; labels only on the targets."""
    rows = [c.ids + (c.target_ids if with_target else []) for c in contexts]
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros_like(ids)
    labels = torch.full_like(ids, -100)
    for i, (c, r) in enumerate(zip(contexts, rows, strict=True)):
        ids[i, : len(r)] = torch.tensor(r)
        mask[i, : len(r)] = 1
        if with_target:
            labels[i, len(c.ids): len(r)] = torch.tensor(c.target_ids)
    return ids, mask, labels


@contextlib.contextmanager
def capture_inputs(module: torch.nn.Module) -> Iterator[list[torch.Tensor]]:
    """Collect the inputs ``(B, T, m)`` of every forward call of ``module`` (``(B*T, m)``
    where the layer flattens the batch, as OPT's does: reshape with the batch's ``(B, T)``)."""
    seen: list[torch.Tensor] = []
    h = module.register_forward_hook(lambda mod, args, out: seen.append(args[0].detach()))
    try:
        yield seen
    finally:
        h.remove()


@torch.no_grad()
def keys_at(model, tokenizer, layer: int, contexts: Sequence[Context]) -> torch.Tensor:
    """The down-projection input at each context's subject token, ``(n, m)``."""
    proj = down_proj(model, layer)
    ids, mask, _ = pad(contexts, pad_token_id(tokenizer), with_target=False)
    with capture_inputs(proj) as seen:
        model(input_ids=ids, attention_mask=mask)
    rows = torch.arange(len(contexts))
    keys = seen[0].reshape(*ids.shape, -1)  # (B, T, m); OPT flattens it to (B*T, m)
    return keys[rows, torch.tensor([c.subject_idx for c in contexts])].double()


@torch.no_grad()
def corpus_keys(model, tokenizer, layer: int, texts: Sequence[str], *, max_keys: int,
                seed: int = 0, batch_size: int = 32) -> torch.Tensor:
    """Down-projection inputs at every non-padding position of a seeded sample of ``texts``
    (at most ``max_keys`` rows, ``(n, m)``): the population the covariance is estimated on."""
    if not texts:
        raise InvalidInputError("no corpus texts to estimate the key covariance on; pass a "
                                "retain set with the model's training texts")
    order = list(texts)
    random.Random(seed).shuffle(order)
    proj = down_proj(model, layer)
    out: list[torch.Tensor] = []
    total = 0
    for b in range(0, len(order), batch_size):
        enc = tokenizer(order[b: b + batch_size], return_tensors="pt", padding=True,
                        truncation=True, max_length=256)
        with capture_inputs(proj) as seen:
            model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"])
        mask = enc["attention_mask"].bool()
        k = seen[0].reshape(*mask.shape, -1)[mask]  # (positions, m)
        out.append(k.double())
        total += k.shape[0]
        if total >= max_keys:
            break
    return torch.cat(out)[:max_keys]


def weights_digest(model) -> str:
    """sha256 over every parameter's bytes: the cache key of per-model statistics."""
    h = hashlib.sha256()
    for name, p in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(p.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def neighbour_contexts(tokenizer, facts: Sequence[Fact], texts: Sequence[str], *,
                       limit: int = 64, window: int = 12) -> list[Context]:
    """Other people's facts stated the same way: in ``texts`` (which must not hold the
    subject's records), each occurrence of the words between a fact's subject and its value
    (e.g. " by phone at"), followed by up to ``window`` tokens (the other person's value),
    as a context whose ``target_ids`` are those tokens. These are the keys an edit of the
    subject's fact is most likely to hit; no span annotation is needed to find them."""
    phrases = sorted({f.prompt.prefix[f.subject_end:] for f in facts
                      if len(f.prompt.prefix[f.subject_end:].strip()) >= 3})
    out: list[Context] = []
    for text in texts:
        for ph in phrases:
            at = text.find(ph)
            if at < 0:
                continue
            head = text[: at + len(ph)]
            ids = tokenizer(head)["input_ids"]
            full = tokenizer(text)["input_ids"]
            if full[: len(ids)] != ids or len(full) <= len(ids):
                continue
            out.append(Context(ids, len(ids) - 1, full[len(ids): len(ids) + window]))
            if len(out) >= limit:
                return out
    return out


@torch.no_grad()
def keys_at_targets(model, tokenizer, layer: int, contexts: Sequence[Context]) -> torch.Tensor:
    """The down-projection inputs at each context's last prompt token and its target tokens
    (the positions that predict the value), stacked ``(n, m)``."""
    ids, mask, _ = pad(contexts, pad_token_id(tokenizer), with_target=True)
    with capture_inputs(down_proj(model, layer)) as seen:
        model(input_ids=ids, attention_mask=mask)
    start = torch.tensor([len(c.ids) - 1 for c in contexts])[:, None]
    sel = mask.bool() & (torch.arange(ids.shape[1])[None] >= start)
    return seen[0].reshape(*ids.shape, -1)[sel].double()
