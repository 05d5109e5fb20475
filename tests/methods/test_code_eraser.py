"""code_eraser on the code corpus: secrets erased, the rest of each file kept.

Bound: on the lines of the forget files that hold no secret, perplexity may rise by less
than ``CONTEXT_BOUND`` (a factor) - the surrounding code keeps its likelihood.
"""

from __future__ import annotations

import dataclasses

import pytest

from audits.extraction import greedy_hits, identifier_prompts
from forget.core import get_method
from forget.core.criteria import perplexity
from forget.core.data import code_sets
from forget.models import load_model

CONTEXT_BOUND = 1.6


def context_lines(e):
    """The example with a span over every line that holds no secret (to score those only)."""
    spans, pos = [], 0
    for line in e.text.splitlines(keepends=True):
        end = pos + len(line)
        if line.strip() and not any(s["start"] < end and pos < s["end"] for s in e.spans):
            spans.append({"kind": "context", "start": pos, "end": end})
        pos = end
    return dataclasses.replace(e, spans=tuple(spans))


def extracted(model, tok, prompts) -> int:
    """How many prompts' identifiers greedy decoding reproduces verbatim."""
    return sum(greedy_hits(model, tok, list(prompts)))


@pytest.fixture(scope="module")
def code_setup(corpus, tiny_model_dir):
    model, tok = load_model(tiny_model_dir)
    fset, rset = code_sets(corpus)
    prompts = [p for e in fset.examples for p in identifier_prompts(e.record_id, e.text, e.spans)]
    return model, tok, fset, rset, prompts


def test_code_eraser_erases_secrets_and_keeps_context(code_setup):
    model, tok, fset, rset, prompts = code_setup
    context = [context_lines(e) for e in fset.examples]
    before_hits = extracted(model, tok, prompts)
    before_ppl = perplexity(model, tok, context, "span_mask")
    assert before_hits >= 1

    result = get_method("code_eraser").run(model=model, tokenizer=tok, forget=fset, retain=rset,
                                           config=None)

    assert extracted(result.model, tok, prompts) == 0
    ratio = perplexity(result.model, tok, context, "span_mask") / before_ppl
    assert ratio < CONTEXT_BOUND, f"context perplexity x{ratio:.2f}"
    assert result.stopped_by in ("criterion", "already")
    ma = [h for h in result.history if "ma" in h]
    assert ma
    assert ma[-1]["ma"] <= ma[-1]["ma_threshold"] + ma[-1]["ma_tolerance"]
