"""Extraction: does greedy decoding from the text before an identifier reproduce it?

Plain inputs only (a causal LM, its tokenizer, strings): usable on any HF model.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Prompt:
    """An extraction probe: ``prefix`` is what precedes the identifier, ``target`` the identifier
    as it continues the prefix (with its leading space, if any)."""

    prefix: str
    target: str
    kind: str
    record_id: str = ""


def identifier_prompts(record_id: str, text: str, spans: Iterable[dict],
                       kinds: Iterable[str] | None = None) -> list[Prompt]:
    """One prompt per span of the wanted kinds whose prefix is not empty.

    Trailing whitespace moves from the prefix into the target: a byte-level tokenizer merges
    the space into the next token, so a prefix ending in a space would be out of distribution.
    """
    wanted = set(kinds) if kinds is not None else None
    out = []
    for sp in spans:
        if wanted is not None and sp["kind"] not in wanted:
            continue
        prefix = text[: sp["start"]].rstrip()
        if prefix:
            out.append(Prompt(prefix, text[len(prefix): sp["end"]], sp["kind"], record_id))
    return out


@torch.no_grad()
def greedy_continuations(
    model, tokenizer, prefixes: Sequence[str], max_new_tokens: Sequence[int] | int,
    *, batch_size: int = 64,
) -> list[str]:
    """Greedy-decode each prefix (left-padded batches) and return the decoded new text."""
    if isinstance(max_new_tokens, int):
        max_new_tokens = [max_new_tokens] * len(prefixes)
    order = sorted(range(len(prefixes)), key=lambda i: max_new_tokens[i])
    out: list[str] = [""] * len(prefixes)
    side = tokenizer.padding_side
    tokenizer.padding_side = "left"
    try:
        for b in range(0, len(order), batch_size):
            idx = order[b: b + batch_size]
            enc = tokenizer([prefixes[i] for i in idx], return_tensors="pt", padding=True)
            enc = {k: v.to(model.device) for k, v in enc.items() if k != "token_type_ids"}
            gen = model.generate(
                **enc, do_sample=False, max_new_tokens=max(max_new_tokens[i] for i in idx),
                pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
            )
            new = gen[:, enc["input_ids"].shape[1]:]
            for i, row in zip(idx, new, strict=True):
                out[i] = tokenizer.decode(row, skip_special_tokens=True)
    finally:
        tokenizer.padding_side = side
    return out


def greedy_hits(model, tokenizer, prompts: Sequence[Prompt], *, batch_size: int = 64,
                slack: int = 2) -> list[bool]:
    """For each prompt, whether greedy decoding reproduces its target verbatim."""
    if not prompts:
        return []
    lengths = [len(tokenizer(p.target, add_special_tokens=False)["input_ids"]) + slack
               for p in prompts]
    conts = greedy_continuations(model, tokenizer, [p.prefix for p in prompts], lengths,
                                 batch_size=batch_size)
    return [c.startswith(p.target) for c, p in zip(conts, prompts, strict=True)]
