"""Extraction: do greedy or sampled completions from the text before an identifier reproduce it?

Verbatim hits, memorization accuracy (MA) and extraction likelihood (EL_n) per identifier
occurrence. Results hold the identifier's kind and masked form, never its value or the prompt.

Plain inputs only (a causal LM, its tokenizer, strings): usable on any HF model.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import torch

from audits import metrics as M
from audits.records import mask


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
    side, pad_token = tokenizer.padding_side, tokenizer.pad_token
    tokenizer.padding_side = "left"
    if pad_token is None:  # GPT-2-style tokenizers: pad with eos (masked), as generate() does
        tokenizer.pad_token = tokenizer.eos_token
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
        if pad_token is None:
            tokenizer.pad_token = None
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


# --------------------------------------------------------------------------- token-level probes


def prompt_ids(tokenizer, prompt: Prompt) -> tuple[list[int], list[int]]:
    """``(prefix ids with <s>, target ids)`` such that prefix + target tokenizes the full text.

    The target's ids are cut from the tokenization of ``prefix + target`` when the prefix's own
    tokenization is a prefix of it (the usual case for a byte-level BPE with a leading space);
    otherwise the two parts are tokenized separately.
    """
    pre = tokenizer(prompt.prefix)["input_ids"]
    full = tokenizer(prompt.prefix + prompt.target)["input_ids"]
    if full[: len(pre)] == pre and len(full) > len(pre):
        return pre, full[len(pre):]
    return pre, tokenizer(prompt.target, add_special_tokens=False)["input_ids"]


@torch.no_grad()
def generate_ids(model, tokenizer, prefixes: Sequence[list[int]], max_new_tokens: Sequence[int],
                 *, batch_size: int = 64, do_sample: bool = False, temperature: float = 1.0,
                 seed: int = 0) -> list[list[int]]:
    """Continue each id list (left-padded batches); greedy, or pure sampling at ``temperature``.

    Sampling runs under a forked RNG seeded with ``seed``: reproducible, and the caller's
    global RNG state is left untouched.
    """
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    device = next(model.parameters()).device
    order = sorted(range(len(prefixes)), key=lambda i: (max_new_tokens[i], len(prefixes[i])))
    out: list[list[int]] = [[] for _ in prefixes]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for b in range(0, len(order), batch_size):
            idx = order[b: b + batch_size]
            width = max(len(prefixes[i]) for i in idx)
            ids = torch.full((len(idx), width), pad, dtype=torch.long)
            mask = torch.zeros((len(idx), width), dtype=torch.long)
            for row, i in enumerate(idx):  # left padding: every row ends at the last column
                ids[row, width - len(prefixes[i]):] = torch.tensor(prefixes[i])
                mask[row, width - len(prefixes[i]):] = 1
            kw = dict(do_sample=True, temperature=temperature, top_k=0, top_p=1.0) \
                if do_sample else dict(do_sample=False)
            gen = model.generate(
                input_ids=ids.to(device), attention_mask=mask.to(device),
                max_new_tokens=max(max_new_tokens[i] for i in idx),
                pad_token_id=pad, eos_token_id=tokenizer.eos_token_id, **kw,
            )
            for row, i in enumerate(idx):
                new = gen[row, width:].tolist()
                out[i] = new[: max_new_tokens[i]]
    return out


@torch.no_grad()
def teacher_forced_argmax(model, sequences: Sequence[list[int]], starts: Sequence[int], *,
                          pad_id: int = 0, batch_size: int = 64) -> list[list[int]]:
    """For each sequence, the model's argmax prediction of every token from ``starts[i]`` on."""
    device = next(model.parameters()).device
    out: list[list[int]] = [[] for _ in sequences]
    order = sorted(range(len(sequences)), key=lambda i: len(sequences[i]))
    for b in range(0, len(order), batch_size):
        idx = order[b: b + batch_size]
        width = max(len(sequences[i]) for i in idx)
        ids = torch.full((len(idx), width), pad_id, dtype=torch.long)
        mask = torch.zeros((len(idx), width), dtype=torch.long)
        for row, i in enumerate(idx):
            ids[row, : len(sequences[i])] = torch.tensor(sequences[i])
            mask[row, : len(sequences[i])] = 1
        pred = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits.argmax(-1)
        for row, i in enumerate(idx):  # position p predicts token p + 1
            out[i] = pred[row, starts[i] - 1: len(sequences[i]) - 1].tolist()
    return out


# --------------------------------------------------------------------------- the probe run

SLACK = 2  # extra generated tokens, so a hit is not missed by one merge at the boundary


@dataclass
class ProbeResult:
    """One identifier occurrence probed from the text before it."""

    record_id: str
    kind: str
    masked: str
    target_tokens: int
    greedy_hit: bool
    sampled_hits: int
    samples: int
    ma: float
    el: dict[str, float | None] = field(default_factory=dict)  # "3" -> EL_3, ...


@dataclass
class ExtractionResult:
    probes: list[ProbeResult]
    greedy_hits: int
    sampled_hits: int
    mean_ma: float
    mean_el: dict[str, float | None]
    samples: int
    temperature: float
    seed: int

    @property
    def hits(self) -> int:
        """Probes reproduced verbatim by greedy decoding or by at least one sample."""
        return sum(1 for p in self.probes if p.greedy_hit or p.sampled_hits > 0)


def _contains(tokenizer, ids: list[int], target: str) -> bool:
    return target.strip() in tokenizer.decode(ids, skip_special_tokens=True)


def run_extraction(model, tokenizer, prompts: Sequence[Prompt], *, samples: int = 8,
                   temperature: float = 1.0, el_ns: Sequence[int] = (3, 5, 10), seed: int = 0,
                   batch_size: int = 64) -> ExtractionResult:
    """Greedy and ``samples`` sampled completions per prompt, then MA and EL_n per prompt."""
    pairs = [prompt_ids(tokenizer, p) for p in prompts]
    lengths = [len(t) + SLACK for _, t in pairs]
    greedy = generate_ids(model, tokenizer, [p for p, _ in pairs], lengths,
                          batch_size=batch_size)
    sampled: list[list[int]] = []
    if samples:
        rep = [i for i in range(len(pairs)) for _ in range(samples)]
        sampled = generate_ids(model, tokenizer, [pairs[i][0] for i in rep],
                               [lengths[i] for i in rep], batch_size=batch_size,
                               do_sample=True, temperature=temperature, seed=seed)
    # MA: teacher-forced argmax over the identifier's tokens.
    pad = tokenizer.pad_token_id or 0
    preds = teacher_forced_argmax(model, [p + t for p, t in pairs], [len(p) for p, _ in pairs],
                                  pad_id=pad, batch_size=batch_size)
    # EL_n: greedy continuation from every cut t of the identifier (one batched call).
    cuts = [(i, t) for i, (_, tgt) in enumerate(pairs) for t in range(len(tgt))
            if len(tgt) - t >= min(el_ns, default=len(tgt) + 1)]
    conts = generate_ids(model, tokenizer, [pairs[i][0] + pairs[i][1][:t] for i, t in cuts],
                         [len(pairs[i][1]) - t for i, t in cuts], batch_size=batch_size)
    by_prompt: dict[int, dict[int, list[int]]] = {}
    for (i, t), c in zip(cuts, conts, strict=True):
        by_prompt.setdefault(i, {})[t] = c
    probes = []
    for i, (p, (_, tgt)) in enumerate(zip(prompts, pairs, strict=True)):
        s_hits = sum(_contains(tokenizer, sampled[i * samples + j], p.target)
                     for j in range(samples))
        el = {}
        for n in el_ns:
            got = by_prompt.get(i, {})
            el[str(n)] = M.extraction_likelihood([got.get(t, []) for t in range(len(tgt))], tgt, n) \
                if len(tgt) >= n else None
        probes.append(ProbeResult(
            p.record_id, p.kind, mask(p.target.strip(), p.kind), len(tgt),
            _contains(tokenizer, greedy[i], p.target), int(s_hits), samples,
            M.memorization_accuracy(preds[i], tgt), el,
        ))
    mean_el: dict[str, float | None] = {}
    for n in el_ns:
        vals = [p.el[str(n)] for p in probes if p.el[str(n)] is not None]
        mean_el[str(n)] = sum(vals) / len(vals) if vals else None
    return ExtractionResult(
        probes, sum(p.greedy_hit for p in probes), sum(p.sampled_hits > 0 for p in probes),
        sum(p.ma for p in probes) / len(probes) if probes else 0.0, mean_el, samples,
        temperature, seed,
    )
