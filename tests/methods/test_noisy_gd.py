"""noisy_gd: the deletion bound (hand-computed values, properties), the noisy-GD head, the
statistical indistinguishability of deletion and retraining, and the method on the tiny LM."""

from __future__ import annotations

import math

import pytest
import torch
from certified_helpers import convex_problem
from hypothesis import given, settings
from hypothesis import strategies as st

from forget.core import get_method, subject_sets
from forget.core.certified import (
    SOFTMAX_LIPSCHITZ,
    check_assumptions,
    deletion_rdp,
    deletion_steps,
    initial_divergence,
    max_step_size,
    rdp_to_dp,
)
from forget.errors import InvalidInputError, ModelNotFoundError
from forget.methods._certified_head import (
    HeadState,
    HeadTrainConfig,
    clipped_mean_grad,
    noisy_gd,
    train_head,
)

# -- the bound, by hand ------------------------------------------------------------------------
BASE = {"alpha": 2.0, "n": 2, "s": 1, "lipschitz": 1.0, "sigma": 1.0, "m": 1.0}


def test_initial_divergence_by_hand():
    assert initial_divergence(**BASE) == pytest.approx(2.0)  # 4*2*1*1 / (1*1*4)
    # 4*3*2^2*2 / (0.1 * 0.25 * 100^2) = 96 / 250
    assert initial_divergence(alpha=3.0, n=100, s=2, lipschitz=math.sqrt(2), sigma=0.5,
                              m=0.1) == pytest.approx(0.384)


def test_deletion_rdp_by_hand():
    assert deletion_rdp(0, eta=0.5, **BASE) == pytest.approx(2.0)
    assert deletion_rdp(4, eta=0.5, **BASE) == pytest.approx(2 / math.e)  # exp(-4*1*0.5/2)*2


def test_deletion_steps_by_hand():
    # K = ceil((alpha/(m eta)) ln(eps0/eps)) = ceil(4 ln(2/eps))
    assert deletion_steps(target_epsilon=0.74, eta=0.5, **BASE) == 4  # 4 * 0.9943 = 3.98
    assert deletion_steps(target_epsilon=0.73, eta=0.5, **BASE) == 5  # 4 * 1.0079 = 4.03
    assert deletion_steps(target_epsilon=2.5, eta=0.5, **BASE) == 0  # already below


def test_rdp_to_dp_and_step_size_by_hand():
    assert rdp_to_dp(0.5, alpha=2.0, delta=math.exp(-3)) == pytest.approx(3.5)
    assert max_step_size(smoothness=0.5, lam=0.5) == pytest.approx(1.0)


@pytest.mark.parametrize("bad", [
    {"alpha": 1.0}, {"alpha": 0.5}, {"s": 3}, {"n": 0}, {"sigma": 0.0}, {"m": -1.0},
    {"lipschitz": float("nan")},
])
def test_bound_refuses_bad_parameters(bad):
    with pytest.raises(InvalidInputError):
        initial_divergence(**(BASE | bad))


@pytest.mark.parametrize("kwargs", [
    {"eta": 2.0, "lam": 0.1, "clip": SOFTMAX_LIPSCHITZ},  # eta > 1/L = 1/0.6
    {"eta": 1.0, "lam": 0.1, "clip": 1.0},  # clipping below the Lipschitz constant
])
def test_assumptions_are_checked(kwargs):
    with pytest.raises(InvalidInputError, match="lower eta|clip"):
        check_assumptions(**kwargs)


params = st.fixed_dictionaries({
    "alpha": st.floats(1.01, 64), "eta": st.floats(1e-3, 2.0), "n": st.integers(1, 10_000),
    "lipschitz": st.floats(0.1, 10), "sigma": st.floats(1e-3, 10), "m": st.floats(1e-3, 10),
}).flatmap(lambda d: st.builds(lambda s: d | {"s": s}, st.integers(0, d["n"])))


@settings(max_examples=200, deadline=None)
@given(params, st.floats(1e-4, 100))
def test_deletion_steps_is_the_fewest_that_meet_the_target(p, target):
    k = deletion_steps(target_epsilon=target, **p)
    assert deletion_rdp(k, **p) <= target
    assert k == 0 or deletion_rdp(k - 1, **p) > target


@settings(max_examples=200, deadline=None)
@given(params, st.integers(0, 500))
def test_bound_decreases_with_steps_and_grows_with_deleted_points(p, k):
    assert deletion_rdp(k + 1, **p) <= deletion_rdp(k, **p)
    q = {key: v for key, v in p.items() if key != "eta"}
    if 2 * p["s"] <= p["n"]:
        assert initial_divergence(**(q | {"s": 2 * p["s"]})) == pytest.approx(
            4 * initial_divergence(**q))


# -- the head's gradient -----------------------------------------------------------------------
def test_clipped_gradient_equals_autograd_when_no_clipping_and_is_bounded_otherwise():
    x, y = convex_problem(n=30, s=3)
    theta = torch.randn(2, x.shape[1], dtype=torch.float64, requires_grad=True)
    loss = torch.nn.functional.cross_entropy(x @ theta.T, y)
    (auto,) = torch.autograd.grad(loss, theta)
    g, clipped = clipped_mean_grad(theta.detach(), x, y, SOFTMAX_LIPSCHITZ)
    assert clipped == 0 and torch.allclose(g, auto)  # unit rows: the bound never clips
    g_small, clipped_small = clipped_mean_grad(theta.detach(), x, y, 0.01)
    assert clipped_small > 0 and g_small.norm() <= 0.01 + 1e-12


# -- deletion vs retraining, over seeds --------------------------------------------------------
def test_deletion_is_indistinguishable_from_retraining_with_far_fewer_steps():
    from scipy import stats

    n, s, k_a = 100, 10, 400
    x, y = convex_problem(n, s)
    lam, sigma, clip = 0.5, 0.005, SOFTMAX_LIPSCHITZ
    eta = max_step_size(smoothness=0.5, lam=lam)
    k_u = deletion_steps(target_epsilon=0.05, alpha=2.0, eta=eta, n=n, s=s, lipschitz=clip,
                         sigma=sigma, m=lam)
    u = torch.randn(2 * x.shape[1], generator=torch.Generator().manual_seed(123),
                    dtype=torch.float64)
    u /= u.norm()  # the fixed random projection
    run = {"eta": eta, "lam": lam, "sigma": sigma, "clip": clip}
    before, deleted, retrained = [], [], []
    for seed in range(20):
        zero = torch.zeros(2, x.shape[1], dtype=torch.float64)
        a, _ = noisy_gd(zero, x, y, steps=k_a, generator=torch.Generator().manual_seed(seed),
                        **run)
        d, _ = noisy_gd(a, x[s:], y[s:], steps=k_u,
                        generator=torch.Generator().manual_seed(1000 + seed), **run)
        r, _ = noisy_gd(zero, x[s:], y[s:], steps=k_a,
                        generator=torch.Generator().manual_seed(2000 + seed), **run)
        before.append(float(a.flatten() @ u))
        deleted.append(float(d.flatten() @ u))
        retrained.append(float(r.flatten() @ u))
    # control: the trained head (before deletion) is told from the retrained one
    assert stats.ttest_ind(before, retrained, equal_var=False).pvalue < 1e-3
    assert stats.ks_2samp(before, retrained).pvalue < 1e-3
    # after the certified deletion, neither test tells them apart
    assert stats.ttest_ind(deleted, retrained, equal_var=False).pvalue > 0.01
    assert stats.ks_2samp(deleted, retrained).pvalue > 0.01
    assert 0 < k_u <= k_a / 5  # far fewer gradient steps than retraining


# -- the method on the tiny LM -----------------------------------------------------------------
@pytest.fixture(scope="module")
def head_setup(tmp_path_factory, corpus, tiny_model_dir, trained_subject):
    from forget.methods.noisy_gd import build_head_model, corpus_head_records
    from forget.models import load_model

    out = tmp_path_factory.mktemp("head") / "head"
    records = corpus_head_records(corpus)
    build_head_model(tiny_model_dir, records, out, config=HeadTrainConfig(steps=200),
                     registry=tmp_path_factory.mktemp("reg"))
    model, tok = load_model(out)
    fset, rset = subject_sets(corpus, trained_subject)
    result = get_method("noisy_gd").run(model=model, tokenizer=tok, forget=fset, retain=rset)
    return {"dir": out, "model": model, "tok": tok, "forget": fset, "retain": rset,
            "result": result, "records": records}


def test_head_deletion_removes_records_with_the_theorems_step_count(head_setup, tmp_path):
    res, fset = head_setup["result"], head_setup["forget"]
    before = HeadState.load(head_setup["dir"])
    res.save_extra(tmp_path)
    after = HeadState.load(tmp_path)
    forget_ids = {e.record_id for e in fset.examples}
    removed = len(forget_ids & set(before.record_ids))
    assert removed > 0 and not forget_ids & set(after.record_ids)
    assert len(after.record_ids) == len(before.record_ids) - removed
    f = res.formal_guarantee
    expected = deletion_steps(target_epsilon=1.0, alpha=2.0, eta=before.eta, n=len(
        before.record_ids), s=removed, lipschitz=before.clip, sigma=before.sigma, m=before.lam)
    assert res.steps == f["deletion_steps"] == expected
    assert f["epsilon"] <= 1.0 and f["applies_to"] == "head" and f["removed"] == removed
    assert f["clipped_gradients"] == 0
    assert after.deletions[-1]["deletion_steps"] == expected
    assert "head only" in res.guarantee and "Chien" in res.guarantee
    assert "not covered" in res.guarantee
    assert res.model is head_setup["model"]  # the frozen LM is returned as it is


def test_unlearned_head_is_as_accurate_as_a_retrained_head(head_setup, tmp_path):
    from forget.methods._certified_head import accuracy, lm_features

    res = head_setup["result"]
    res.save_extra(tmp_path)
    after = HeadState.load(tmp_path)
    before = HeadState.load(head_setup["dir"])
    text = {r[0]: r[1] for r in head_setup["records"]}
    x, _ = lm_features(head_setup["model"], head_setup["tok"], [text[r] for r in after.record_ids])
    y = torch.tensor([after.labels[r] for r in after.record_ids])
    cfg = HeadTrainConfig(lam=before.lam, sigma=before.sigma, steps=before.train_steps, seed=5)
    retrained, _ = train_head(x, y, len(before.classes), cfg)
    acc_u, acc_r = accuracy(after.theta, x, y), accuracy(retrained, x, y)
    assert acc_r > 0.8 and abs(acc_u - acc_r) < 0.05, (acc_u, acc_r)


def test_head_deletion_refuses_another_lm_and_a_plain_lm(head_setup, tiny_model_dir):
    import copy

    from forget.methods.noisy_gd import NoisyGDConfig
    from forget.models import load_model

    other, tok = copy.deepcopy(head_setup["model"]), head_setup["tok"]
    with torch.no_grad():
        next(other.parameters()).add_(1e-3)  # any other LM: features would differ
    with pytest.raises(InvalidInputError, match="differs from the one the head"):
        get_method("noisy_gd").run(model=other, tokenizer=tok, forget=head_setup["forget"],
                                   retain=head_setup["retain"],
                                   config=NoisyGDConfig(head_dir=str(head_setup["dir"])))
    plain, tok = load_model(tiny_model_dir)
    with pytest.raises(ModelNotFoundError, match="no certified head"):
        get_method("noisy_gd").run(model=plain, tokenizer=tok, forget=head_setup["forget"],
                                   retain=head_setup["retain"])
