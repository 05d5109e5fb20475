"""Reliability, generalisation and locality of an edit, as EasyEdit defines them, for suppression.

EasyEdit (Wang et al., 2024; Yao et al., EMNLP 2023) scores an edit on three prompt sets:
*reliability* on the edit prompts, *generalisation* on rephrasings of them, *locality* on
unrelated prompts whose outputs must not change (the share of the post-edit model's
predictions equal to the pre-edit model's). For a suppression edit "success" on a prompt is
that greedy decoding no longer reproduces the value. Locality is counted two ways: per fact
(the whole greedy continuation of another subject's fact prompt is unchanged, the strict
measure) and per token (EasyEdit's teacher-forced argmax agreement on the value tokens).

Only counts and rates are returned: never a prompt, a value or a name.
"""

from __future__ import annotations

from collections.abc import Sequence

from audits.extraction import SLACK, generate_ids, prompt_ids, teacher_forced_argmax


def _greedy(model, tok, prompts) -> list[list[int]]:
    pairs = [prompt_ids(tok, p) for p in prompts]
    return generate_ids(model, tok, [p for p, _ in pairs], [len(t) + SLACK for _, t in pairs])


def produced(model, tok, prompts) -> list[bool]:
    """For each prompt, whether greedy decoding reproduces its value (the audit's test)."""
    if not prompts:
        return []
    conts = _greedy(model, tok, prompts)
    return [p.target.strip() in tok.decode(c, skip_special_tokens=True)
            for p, c in zip(prompts, conts, strict=True)]


def edit_scores(original, edited, tok, *, edit_prompts: Sequence, paraphrase_prompts: Sequence,
                locality_prompts: Sequence) -> dict[str, float | int | None]:
    """The three scores of a suppression edit (rates in [0, 1]) and the counts behind them.

    Args:
        original, edited: the model before and after the edit.
        edit_prompts: the prompts the edit was computed on (the subject's facts).
        paraphrase_prompts: rephrasings of them, never used by the edit.
        locality_prompts: other subjects' fact prompts.
    """
    before_edit = produced(original, tok, edit_prompts)
    after_edit = produced(edited, tok, edit_prompts)
    before_para = produced(original, tok, paraphrase_prompts)
    after_para = produced(edited, tok, paraphrase_prompts)
    live = [a for b, a in zip(before_para, after_para, strict=True) if b]
    loc_before = _greedy(original, tok, locality_prompts) if locality_prompts else []
    loc_after = _greedy(edited, tok, locality_prompts) if locality_prompts else []
    same = [a == b for a, b in zip(loc_before, loc_after, strict=True)]
    # EasyEdit's token-level locality: teacher-forced argmax on the values, before vs after.
    pairs = [prompt_ids(tok, p) for p in locality_prompts]
    seqs, starts = [p + t for p, t in pairs], [len(p) for p, _ in pairs]
    pad = tok.pad_token_id or 0
    tf_b = teacher_forced_argmax(original, seqs, starts, pad_id=pad) if pairs else []
    tf_a = teacher_forced_argmax(edited, seqs, starts, pad_id=pad) if pairs else []
    agree = [x == y for b, a in zip(tf_b, tf_a, strict=True) for x, y in zip(b, a, strict=True)]
    kept = [a for b, a in zip(produced(original, tok, locality_prompts) if pairs else [],
                              produced(edited, tok, locality_prompts) if pairs else [],
                              strict=True) if b]

    def rate(xs: list[bool]) -> float | None:
        return sum(xs) / len(xs) if xs else None

    return {
        "reliability": rate([not a for a in after_edit]),
        "generalisation": rate([not a for a in after_para]),
        "generalisation_live": rate([not a for a in live]),
        "locality": rate(same),
        "locality_token": rate(agree),
        "locality_facts_kept": rate(kept),
        "edit_prompts": len(edit_prompts),
        "edit_produced_before": sum(before_edit),
        "edit_produced_after": sum(after_edit),
        "paraphrase_prompts": len(paraphrase_prompts),
        "paraphrase_produced_before": sum(before_para),
        "paraphrase_produced_after": sum(after_para),
        "locality_prompts": len(locality_prompts),
    }


def token_agreement(original, edited, tok, texts: Sequence[str]) -> float | None:
    """Share of next-token argmax predictions over ``texts`` that the edit left unchanged."""
    if not texts:
        return None
    seqs = [tok(t)["input_ids"] for t in texts]
    pad = tok.pad_token_id or 0
    a = teacher_forced_argmax(original, seqs, [1] * len(seqs), pad_id=pad)
    b = teacher_forced_argmax(edited, seqs, [1] * len(seqs), pad_id=pad)
    same = [x == y for r, s in zip(a, b, strict=True) for x, y in zip(r, s, strict=True)]
    return sum(same) / len(same) if same else None
