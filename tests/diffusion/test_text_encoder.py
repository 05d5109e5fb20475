"""``text_encoder``: concept erasure in the CLIP text encoder through the shared trainer.

After erasing "red", images generated from prompts naming it score as "red" no more than
images from unrelated prompts (+ ERASE_MARGIN); the other colours keep their scores (each
falls by at most RETAIN_DROP); the circumvention probe ran and is in the report; the original
pipeline is untouched.
"""

from __future__ import annotations

import pytest
from diffusion_helpers import ERASE_MARGIN, RETAIN_DROP, fingerprint, retain_similarity

from forget.core import METHODS, get_method
from forget.diffusion.shapes import ShapesSpec
from forget.errors import InvalidInputError
from forget.methods.text_encoder import TextEncoderConfig, select_parameters


def test_concept_score_falls_to_unrelated_level(red_erasure):
    s = red_erasure["report"].scores
    assert s["concept_before"] > s["unrelated_before"] + ERASE_MARGIN  # the control
    assert s["concept_after"] <= s["unrelated_after"] + ERASE_MARGIN
    assert red_erasure["report"].verdict == "pass"


def test_other_concepts_stay_within_bound(red_erasure):
    retain = red_erasure["report"].retain
    assert set(retain) == {"green", "blue"}
    for name, r in retain.items():
        assert r["drop"] <= RETAIN_DROP, name
    sim = red_erasure["report"].similarity
    assert sim["retain"] > 0.95 and sim["concept"] < sim["retain"]


def test_circumvention_probe_is_in_the_report(red_erasure):
    circ = red_erasure["report"].circumvention
    assert circ["ran"] and 0.0 <= circ["recovered"] <= 1.0
    assert "control_score_on_original" in circ
    names = [c["name"] for c in red_erasure["report"].to_dict()["checks"]]
    assert any(n.startswith("circumvention") for n in names)


def test_result_and_original_untouched(red_erasure, tiny_world):
    from forget.models import weights_sha256

    res = red_erasure["result"]
    assert res.method == "text_encoder" and res.steps > 0 and res.tokens_processed > 0
    assert res.stopped_by == "criterion"
    assert res.config_hash == TextEncoderConfig.from_dict(res.config).config_hash()
    assert fingerprint(red_erasure["pipe"]) == red_erasure["before"]
    from forget.models import read_card

    assert weights_sha256(tiny_world["pipeline"]) == read_card(tiny_world["pipeline"])["sha256"]
    # only the text encoder changed; UNet and VAE are the original's (frozen) modules
    new = res.model
    assert new.unet is red_erasure["pipe"].unet and new.vae is red_erasure["pipe"].vae
    assert fingerprint(new)["text_encoder"] != red_erasure["before"]["text_encoder"]


def test_retain_term_limits_collateral_damage(red_erasure):
    """Without the retain term the other prompts' embeddings move further."""
    pipe, fset, rset = red_erasure["pipe"], red_erasure["forget"], red_erasure["retain"]
    with_term = retain_similarity(pipe, red_erasure["result"].model, rset.prompts)
    cfg = TextEncoderConfig(retain_weight=0.0, max_steps=red_erasure["result"].steps,
                            check_every=red_erasure["result"].steps)
    without = get_method("text_encoder").run(model=pipe, tokenizer=None, forget=fset,
                                             retain=rset, config=cfg)
    assert retain_similarity(pipe, without.model, rset.prompts) < with_term


@pytest.mark.parametrize("kw", [{"objective": "esd", "learning_rate": 3e-3},
                                {"objective": "both"}])
def test_esd_objective_erases_too(red_erasure, tiny_world, kw):
    from audits.concept import ConceptAuditConfig, mean_score

    pipe, fset, rset = red_erasure["pipe"], red_erasure["forget"], red_erasure["retain"]
    res = get_method("text_encoder").run(model=pipe, tokenizer=None, forget=fset, retain=rset,
                                         config=TextEncoderConfig(**kw))
    # the audit's two "after" scores (concept_audit's own mean_score and settings); the
    # before, retain and probe parts of the full audit: test_concept_score_falls_to_unrelated_level
    cfg, scorer = ConceptAuditConfig(), tiny_world["classifier"].scorer("red")
    after = mean_score(res.model, scorer, fset.prompts, cfg)
    assert after <= mean_score(res.model, scorer, fset.unrelated, cfg) + ERASE_MARGIN


def test_zero_shot_runs_on_random_latents(red_erasure):
    from forget.diffusion.concepts import concept_sets

    pipe = red_erasure["pipe"]
    fset, rset = concept_sets(ShapesSpec(), "red", shots=0)
    res = get_method("text_encoder").run(model=pipe, tokenizer=None, forget=fset, retain=rset,
                                         config=TextEncoderConfig(max_steps=20, check_every=10))
    assert res.steps > 0 and {"mode": "zero-shot", "images": 0} in res.history
    assert fingerprint(pipe) == red_erasure["before"]


def test_layer_selection(red_erasure):
    te = red_erasure["pipe"].text_encoder
    import copy

    te = copy.deepcopy(te)
    select_parameters(te, ("mlp", "last_attention"))
    on = {n for n, p in te.named_parameters() if p.requires_grad}
    assert on and all(".mlp." in n or "layers.1.self_attn." in n for n in on)
    assert not any("embeddings" in n or "layers.0.self_attn" in n for n in on)


@pytest.mark.parametrize("bad,match", [
    ({"objective": "fast"}, "objective"), ({"train_layers": ("ffn",)}, "train_layers"),
    ({"train_layers": ()}, "train_layers"), ({"learning_rate": 0}, "learning_rate"),
    ({"retain_weight": -1}, "retain_weight"), ({"max_steps": -1}, "max_steps"),
])
def test_config_refuses_bad_values(bad, match):
    with pytest.raises(InvalidInputError, match=match):
        TextEncoderConfig(**bad)


def test_config_round_trips_and_is_registered():
    cfg = TextEncoderConfig(train_layers=("all",), seed=2)
    assert TextEncoderConfig.from_dict(cfg.to_dict()) == cfg
    assert METHODS.get("text_encoder").modality == "diffusion"


def test_refuses_a_language_model():
    with pytest.raises(InvalidInputError, match="diffusion pipelines"):
        get_method("text_encoder").run(model=object(), tokenizer=None, forget=None, retain=None)
