"""The tiny shapes-world pipeline: trains fast, makes images that match their prompts, saves
and loads as a real StableDiffusionPipeline; its classifier tells the concepts apart."""

from __future__ import annotations

import sys

import pytest
import torch

from audits.concept import generate
from forget.diffusion.io import load_pipeline, save_pipeline
from forget.errors import InvalidInputError, MissingExtraError, ModelNotFoundError
from forget.models import read_card, weights_sha256


def test_world_is_measurable(tiny_world):
    assert tiny_world["classifier_accuracy"] >= 0.9
    assert tiny_world["prompt_match"] >= 0.85  # generated images show their prompt's concepts
    assert tiny_world["figures"]["train_s"] > 0  # measured (its speed: bench/text_encoder.py)


def test_pipeline_round_trips_through_from_pretrained(tiny_world, tmp_path):
    pipe = load_pipeline(tiny_world["pipeline"])
    assert type(pipe).__name__ == "StableDiffusionPipeline"
    card = read_card(tiny_world["pipeline"])
    assert card["sha256"] == weights_sha256(tiny_world["pipeline"])
    prompts = ["a blue square", "a green triangle"]
    again = load_pipeline(save_pipeline(pipe, tmp_path / "copy"))
    assert torch.allclose(generate(pipe, prompts, seed=3), generate(again, prompts, seed=3),
                          atol=1e-5)
    with pytest.raises(InvalidInputError, match="already exists"):
        save_pipeline(pipe, tmp_path / "copy")


def test_classifier_scores_its_concepts(tiny_world):
    from forget.diffusion.shapes import concept_images

    clf, spec = tiny_world["classifier"], tiny_world["spec"]
    red = concept_images(spec, "red", 6, seed=9)
    assert float(clf.prob(red, "red").mean()) > 0.8
    assert float(clf.prob(red, "blue").mean()) < 0.2
    with pytest.raises(InvalidInputError, match="knows no concept"):
        clf.prob(red, "purple")


@pytest.mark.parametrize("bad,match", [
    ({"colours": ("red", "purple")}, "unknown colour"),
    ({"size": 4}, "at least 8"),
])
def test_shapes_spec_refuses_bad_worlds(bad, match):
    from forget.diffusion.shapes import ShapesSpec

    with pytest.raises(InvalidInputError, match=match):
        ShapesSpec(**bad)


def test_missing_pipeline_and_missing_extra(tmp_path, monkeypatch):
    with pytest.raises(ModelNotFoundError, match="model_index.json"):
        load_pipeline(tmp_path)
    monkeypatch.setitem(sys.modules, "diffusers", None)  # as if the extra were not installed
    from forget.diffusion import require_diffusers

    with pytest.raises(MissingExtraError, match=r"\[diffusion\]"):
        require_diffusers()
