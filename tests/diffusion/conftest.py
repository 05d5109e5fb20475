"""Fixtures for the diffusion tests: the tiny shapes-world pipeline and classifier, trained
once per session (about a minute on 2 cores), and one erasure of the concept "red"."""

from __future__ import annotations

import pytest

pytest.importorskip("diffusers", reason="the diffusion tests need the 'diffusion' extra")


@pytest.fixture(scope="session")
def tiny_world(tmp_path_factory):
    """``build_tiny``'s output: pipeline dir, data dir, spec, classifier, figures."""
    import torch

    from forget.diffusion.concepts import build_tiny

    torch.manual_seed(0)
    return build_tiny(tmp_path_factory.mktemp("tiny-diffusion"))


@pytest.fixture(scope="session")
def red_erasure(tiny_world):
    """"red" erased few-shot (8 images) with the default config, and the concept audit."""
    from diffusion_helpers import audit_erasure, fingerprint

    from forget.core import get_method
    from forget.diffusion.concepts import concept_sets
    from forget.diffusion.io import load_pipeline

    pipe = load_pipeline(tiny_world["pipeline"])
    before = fingerprint(pipe)
    fset, rset = concept_sets(tiny_world["spec"], "red", shots=8)
    result = get_method("text_encoder").run(model=pipe, tokenizer=None, forget=fset,
                                            retain=rset, config=None)
    report = audit_erasure(tiny_world, pipe, result.model, fset)
    return {"pipe": pipe, "before": before, "forget": fset, "retain": rset, "result": result,
            "report": report}
