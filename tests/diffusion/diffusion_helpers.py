"""Helpers for the diffusion tests (plain functions; fixtures are in conftest.py)."""

from __future__ import annotations

from audits.concept import ConceptAuditConfig, concept_audit, embedding_similarity
from forget.diffusion.concepts import retain_concepts
from forget.models import state_dict_sha256

# Bounds stated before the runs. Erased: the concept's score on its own prompts is at most the
# unrelated prompts' score + ERASE_MARGIN. Retained: each other colour's score on its prompts
# falls by at most RETAIN_DROP (absolute; they start near 0.9-1.0).
ERASE_MARGIN = 0.1
RETAIN_DROP = 0.25
# The circumvention probe at 50 textual-inversion steps (default 150): the tests assert that it
# and its control ran and are reported, not how much they recover (a reported limit, no verdict).
AUDIT = ConceptAuditConfig(erase_margin=ERASE_MARGIN, retain_drop=RETAIN_DROP, ti_steps=50)


def fingerprint(pipe) -> dict[str, str]:
    """sha256 of each trainable component's weights (in memory)."""
    return {n: state_dict_sha256(getattr(pipe, n)) for n in ("text_encoder", "unet", "vae")}


def audit_erasure(world, original, erased, fset, config: ConceptAuditConfig = AUDIT):
    clf, word = world["classifier"], fset.concept
    return concept_audit(
        original=original, erased=erased, scorer=clf.scorer(word), concept=word,
        concept_prompts=fset.prompts, unrelated_prompts=fset.unrelated,
        retain={w: (clf.scorer(w), ps) for w, ps in retain_concepts(world["spec"], word).items()},
        concept_images=fset.images,
        ti_prompts=[p.replace(word, "{}") for p in fset.image_prompts or []], config=config)


def retain_similarity(original, erased, prompts) -> float:
    sims = embedding_similarity(original.text_encoder, erased.text_encoder, original.tokenizer,
                                prompts)
    return sum(sims) / len(sims)
