"""``rome``: the rank-one mathematics (property tests) and the edit on the tiny model.

On the tiny model, after editing the subject's phone and email: neither is produced from the
fact prompts nor from three paraphrases; at least 90% of other subjects' facts are unchanged;
the change is rank one in exactly one weight matrix (one fact), rank <= facts for several;
the original model is untouched. Assertion messages hold counts only, never an identifier.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from forget.core import get_method, subject_sets
from forget.core.data import Example
from forget.errors import InvalidInputError, NothingToEditError
from forget.methods import _rome_math as RM
from forget.methods import _rome_model as MD
from forget.methods._rome_eval import edit_scores, produced
from forget.methods.rome import RomeConfig
from forget.models import load_model, state_dict_sha256, weights_sha256

LOCALITY_BOUND = 0.90  # share of other subjects' facts whose greedy output is unchanged


# ----------------------------------------------------------------------------- pure maths

def _problem(seed: int, d_in: int, d_out: int):
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(d_out, d_in, generator=g, dtype=torch.float64)
    keys = torch.randn(4 * d_in, d_in, generator=g, dtype=torch.float64)
    cov = RM.second_moment(keys, ridge=1e-2)
    k = torch.randn(d_in, generator=g, dtype=torch.float64)
    v = torch.randn(d_out, generator=g, dtype=torch.float64)
    return w, cov, k, v


dims = st.tuples(st.integers(0, 10_000), st.integers(2, 12), st.integers(1, 12))


@settings(max_examples=50, deadline=None)
@given(dims)
def test_update_maps_key_to_value_exactly(p):
    w, cov, k, v = _problem(*p)
    dw = RM.rank_one_update(w, cov, k, v)
    assert torch.allclose((w + dw) @ k, v, atol=1e-8)


@settings(max_examples=50, deadline=None)
@given(dims)
def test_update_is_rank_one(p):
    w, cov, k, v = _problem(*p)
    s = torch.linalg.svdvals(RM.rank_one_update(w, cov, k, v))
    assert s[0] > 0 and (len(s) == 1 or s[1] <= 1e-9 * s[0])


@settings(max_examples=50, deadline=None)
@given(dims, st.integers(0, 10_000))
def test_update_leaves_c_orthogonal_keys_unchanged(p, seed):
    w, cov, k, v = _problem(*p)
    x = torch.randn(k.shape[0], generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    u = torch.linalg.solve(cov, k)
    x = x - (u @ x) / (u @ u) * u  # now xᵀ C⁻¹ k* = 0
    dw = RM.rank_one_update(w, cov, k, v)
    assert torch.allclose((w + dw) @ x, w @ x, atol=1e-8)
    assert abs(float(RM.edit_gain(cov, k, x[None])[0])) < 1e-8
    assert abs(float(RM.edit_gain(cov, k, k[None])[0]) - 1) < 1e-9


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 40), st.integers(1, 8), st.integers(0, 1000))
def test_second_moment_and_mean_key(n, d, seed):
    keys = torch.randn(n, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    c = RM.second_moment(keys, ridge=0.0)
    assert torch.allclose(c, c.T) and torch.allclose(c, keys.T @ keys / n)
    assert float(torch.linalg.eigvalsh(RM.second_moment(keys, 1e-3)).min()) > 0  # invertible
    assert torch.allclose(RM.mean_key(keys), keys.mean(0))
    shift = torch.randn(d, dtype=torch.float64)
    assert torch.allclose(RM.mean_key(keys + shift), keys.mean(0) + shift)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.floats(-100, 100), min_size=1, max_size=8), st.floats(0.01, 50))
def test_clamp_norm(xs, m):
    d = torch.tensor(xs, dtype=torch.float64)
    out = RM.clamp_norm(d, m)
    assert float(out.norm()) <= m + 1e-9
    if float(d.norm()) <= m:
        assert torch.equal(out, d)


@pytest.mark.parametrize("call", [
    lambda: RM.second_moment(torch.zeros(0, 3)),
    lambda: RM.second_moment(torch.ones(2, 3), ridge=-1),
    lambda: RM.rank_one_update(torch.ones(2, 3), torch.eye(3), torch.ones(2), torch.ones(2)),
    lambda: RM.rank_one_update(torch.ones(2, 3), torch.eye(3), torch.zeros(3), torch.ones(2)),
    lambda: RM.clamp_norm(torch.ones(2), 0.0),
])
def test_math_rejects_bad_input(call):
    with pytest.raises(InvalidInputError):
        call()


@pytest.mark.parametrize("fields", [{"position": "middle"}, {"mode": "x"}, {"max_steps": 0},
                                    {"clamp": 0.0}, {"kinds": ()}, {"layer": -1},
                                    {"locality_weight": -1.0}])
def test_config_rejects_bad_values(fields):
    with pytest.raises(InvalidInputError):
        RomeConfig(**fields)


def test_config_round_trips():
    cfg = RomeConfig(kinds=("phone",), layer=1)
    assert RomeConfig.from_dict(cfg.to_dict()) == cfg


# ----------------------------------------------------------------------------- on the tiny model

@pytest.fixture(scope="module")
def rome_setup(corpus, tiny_model_dir, trained_subject):
    model, tok = load_model(tiny_model_dir)
    fset, rset = subject_sets(corpus, trained_subject)
    others = [f.prompt for r in corpus.people
              if r["split"] == "train" and r["subject_id"] != trained_subject
              for f in MD.facts_of([Example(r["record_id"], r["text"], tuple(r["spans"]))],
                                   ("phone", "email", "national_id"))
              if not f.prompt.record_id.endswith("~canonical")]
    return {"model": model, "tok": tok, "forget": fset, "retain": rset, "others": others,
            "files": weights_sha256(tiny_model_dir), "state": state_dict_sha256(model)}


def _changed(before, after) -> list[tuple[str, int]]:
    """(name, rank) of every parameter the edit changed."""
    out = []
    for (name, a), b in zip(before.named_parameters(), after.parameters(), strict=True):
        if not torch.equal(a, b):
            out.append((name, int(torch.linalg.matrix_rank((b - a).double(), rtol=1e-6))))
    return out


@pytest.fixture(scope="module")
def phone_email_edit(rome_setup):
    s = rome_setup
    return get_method("rome").run(model=s["model"], tokenizer=s["tok"], forget=s["forget"],
                                  retain=s["retain"],
                                  config=RomeConfig(kinds=("phone", "email")))


def test_edit_suppresses_phone_and_email_keeps_others(rome_setup, phone_email_edit,
                                                     tiny_model_dir):
    s, result = rome_setup, phone_email_edit
    model, tok = s["model"], s["tok"]
    facts = MD.facts_of([e for e in s["forget"].examples if e.source == "people"],
                        ("phone", "email"))
    paras = MD.paraphrase_facts(facts)
    assert {f.prompt.kind for f in facts} == {"phone", "email"}
    assert len(paras) == 3 * len({(f.prompt.kind, f.prompt.target) for f in facts})
    record_prompts = [f.prompt for f in facts if not f.prompt.record_id.endswith("~canonical")]
    assert sum(produced(model, tok, record_prompts)) >= 1, "control: the original states none"

    scores = edit_scores(model, result.model, tok, edit_prompts=[f.prompt for f in facts],
                         paraphrase_prompts=[f.prompt for f in paras],
                         locality_prompts=s["others"])
    assert scores["edit_produced_after"] == 0, f"{scores['edit_produced_after']} facts still stated"
    assert scores["paraphrase_produced_after"] == 0, "a paraphrase still states the fact"
    assert scores["reliability"] == 1.0 and scores["generalisation"] == 1.0
    assert scores["locality"] >= LOCALITY_BOUND, f"locality {scores['locality']:.2f}"
    assert result.history[-1]["event"] == "scores" and result.history[-1]["reliability"] == 1.0
    # several facts: only the traced layer's down-projection, rank <= number of facts
    changed = _changed(model, result.model)
    layer = next(h["layer"] for h in result.history if h["event"] == "fact_edited")
    assert [n for n, _ in changed] == [f"model.layers.{layer}.mlp.down_proj.weight"]
    assert changed[0][1] <= len({(f.prompt.kind, f.prompt.target) for f in facts})
    # the original is untouched, on disk and in memory
    assert weights_sha256(tiny_model_dir) == s["files"]
    assert state_dict_sha256(model) == s["state"]


def test_one_fact_is_rank_one_in_one_matrix(rome_setup):
    s = rome_setup
    result = get_method("rome").run(model=s["model"], tokenizer=s["tok"], forget=s["forget"],
                                    retain=s["retain"],
                                    config=RomeConfig(kinds=("phone",), layer=0, max_steps=10,
                                                      prefixes=3))
    assert _changed(s["model"], result.model) == [("model.layers.0.mlp.down_proj.weight", 1)]
    assert [h["event"] for h in result.history] == ["fact_edited", "scores"]
    assert result.steps == 10 and result.tokens_processed > 0 and result.wall_time_s > 0
    assert state_dict_sha256(s["model"]) == s["state"]


def test_causal_trace_picks_a_layer(rome_setup):
    from forget.methods._causal_trace import trace_layers, trace_point

    s = rome_setup
    facts = MD.facts_of([e for e in s["forget"].examples if e.source == "people"], ("phone",))
    points = [trace_point(MD.value_context(s["tok"], "", f)) for f in facts]
    res = trace_layers(s["model"], points, samples=2)
    n_layers = s["model"].config.num_hidden_layers
    assert len(res.effects) == n_layers and 0 <= res.best_layer < n_layers
    assert res.p_corrupted < res.p_clean  # the noise hides who is meant
    assert max(res.effects) > 0  # restoring some layer brings the value back


def test_nothing_to_edit_is_a_typed_error(rome_setup):
    s = rome_setup
    empty = dataclasses.replace(s["forget"], examples=[
        dataclasses.replace(e, spans=()) for e in s["forget"].examples])
    with pytest.raises(NothingToEditError) as err:
        get_method("rome").run(model=s["model"], tokenizer=s["tok"], forget=empty,
                               retain=s["retain"], config=None)
    assert "rome has nothing to edit" in str(err.value)


def test_workflow_audits_rome_with_the_paraphrase_probe():
    from audits import AuditConfig
    from forget.workflow.steps import audit_config_for

    off = AuditConfig(paraphrase=False)
    assert audit_config_for("rome", off).paraphrase is True
    assert audit_config_for("npo", off).paraphrase is False
