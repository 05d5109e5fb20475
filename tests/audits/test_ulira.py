"""U-LiRA statistics (audits/ulira.py): hand-checked cases and hypothesis properties."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from audits import ulira as U

floats = st.floats(-20, 20, allow_nan=False)
sds = st.floats(0.05, 5)


def _fit(mu_in, mu_out, sd_in, sd_out, k=4, n=1, glob=True):
    a = np.full(n, 1.0)
    return U.GaussianFit(a * mu_in, a * mu_out, a * sd_in, a * sd_out, k, k, glob)


def test_logit_confidence_is_the_logit_of_the_geometric_mean_probability():
    lp = np.log([0.5, 0.9, 0.1])
    assert U.logit_confidence(lp) == pytest.approx([0.0, math.log(9), -math.log(9)])
    assert np.isfinite(U.logit_confidence([0.0])).all()  # p = 1 is capped, not infinite


@given(st.lists(st.floats(-30, -1e-6), min_size=2, max_size=8, unique=True))
def test_logit_confidence_is_monotone(lps):
    lps = sorted(lps)
    assert np.all(np.diff(U.logit_confidence(lps)) >= 0)


def test_fit_uses_a_global_variance_with_few_shadows():
    a = np.array([[0.0, 10.0], [2.0, 10.0]])  # record 0 varies, record 1 does not
    b = np.array([[0.0, 0.0], [0.0, 4.0]])
    f = U.fit_gaussians(a, b)
    assert f.global_variance and f.mu_in.tolist() == [1.0, 10.0]
    assert f.sd_in.tolist() == pytest.approx([1.0, 1.0])  # sqrt(mean(2, 0))
    g = U.fit_gaussians(a, b, global_variance=False)
    assert g.sd_in[0] == pytest.approx(math.sqrt(2)) and g.sd_in[1] == U.MIN_SD


@pytest.mark.parametrize("a, b, message", [
    (np.zeros((1, 3)), np.zeros((2, 3)), "at least 2"),
    (np.zeros((2, 3)), np.zeros((2, 4)), "records"),
    (np.zeros(3), np.zeros((2, 3)), "shape"),
    (np.full((2, 3), np.nan), np.zeros((2, 3)), "finite"),
])
def test_fit_rejects_bad_shapes(a, b, message):
    with pytest.raises(U.ShadowStatsError, match=message):
        U.fit_gaussians(a, b)


@settings(max_examples=60)
@given(floats, floats, sds, floats, floats)
def test_lr_is_monotone_in_the_score_with_equal_variances(mu_in, mu_out, sd, x, y):
    f = _fit(mu_in, mu_out, sd, sd)
    lo, hi = sorted((x, y))
    a, b = U.log_lr([lo], f)[0], U.log_lr([hi], f)[0]
    assert (b - a) * np.sign(mu_in - mu_out) >= -1e-9


@settings(max_examples=60)
@given(floats, floats, sds, sds, floats)
def test_swapping_in_and_out_negates_the_lr(mu_in, mu_out, sd_in, sd_out, x):
    f = _fit(mu_in, mu_out, sd_in, sd_out)
    g = _fit(mu_out, mu_in, sd_out, sd_in)
    assert U.log_lr([x], f)[0] == pytest.approx(-U.log_lr([x], g)[0], abs=1e-9)


@settings(max_examples=60)
@given(floats, sds, floats)
def test_lr_is_zero_midway_between_equal_variance_means(mu, sd, gap):
    f = _fit(mu + gap, mu - gap, sd, sd)
    assert U.log_lr([mu], f)[0] == pytest.approx(0.0, abs=1e-9)


@settings(max_examples=80, deadline=None)
@given(floats, floats, sds, sds, floats, st.integers(2, 100))
def test_p_values_lie_in_unit_interval_and_fall_toward_in(mu_in, mu_out, sd_in, sd_out, x, k):
    f = U.GaussianFit(np.array([mu_in]), np.array([mu_out]), np.array([sd_in]),
                      np.array([sd_out]), k, k, True)
    p = U.out_p_values([x], f)[0]
    assert 0.0 <= p <= 1.0
    step = f.direction[0] * 0.5  # a score further toward the IN side is no less suspicious
    assert U.out_p_values([x + step], f)[0] <= p + 1e-12


def test_p_value_at_the_out_mean_is_one_half():
    f = _fit(5.0, 1.0, 1.0, 1.0)
    assert U.out_p_values([1.0], f)[0] == pytest.approx(0.5)


@settings(max_examples=40, deadline=None)
@given(floats, floats, sds, st.floats(1e-4, 0.2))
def test_power_lies_in_unit_interval_and_grows_with_the_gap(mu, gap, sd, level):
    small = U.detection_power(_fit(mu + abs(gap), mu, sd, sd), level)
    large = U.detection_power(_fit(mu + abs(gap) + 3 * sd, mu, sd, sd), level)
    assert 0.0 <= small <= large + 1e-12 <= 1.0 + 1e-12


def _shadows(rng, k, n, gap, sd=1.0):
    base = rng.normal(0, 3, n)  # records differ; IN shifts every record by ``gap``
    return (base + gap + rng.normal(0, sd, (k, n)), base + rng.normal(0, sd, (k, n)), base)


def test_person_test_flags_an_in_model_and_clears_an_out_model():
    rng = np.random.default_rng(0)
    a, b, base = _shadows(rng, 4, 8, gap=8.0)
    f = U.fit_gaussians(a, b)
    inside = U.person_test(base + 8 + rng.normal(0, 1, 8), f, alpha=0.01)
    outside = U.person_test(base + rng.normal(0, 1, 8), f, alpha=0.01)
    assert inside.decision == U.IN and inside.flagged > 0 and inside.log_lr_total > 0
    assert outside.decision == U.OUT and outside.flagged == 0 and outside.power >= 0.8
    assert inside.flagged_at["0.01"] >= inside.flagged
    assert inside.threshold == pytest.approx(0.01 / (2 * 8))  # 8 records, 2 sides


def test_person_test_names_a_conspicuous_absence_as_its_own_failure():
    """Over-unlearning: records scored far BELOW what models that never saw them give (the
    gradient-ascent signature) fail as ``absent``, not as a pass; no record looks IN."""
    rng = np.random.default_rng(4)
    a, b, base = _shadows(rng, 4, 8, gap=8.0)
    f = U.fit_gaussians(a, b)
    pushed = U.person_test(base - 10 + rng.normal(0, 1, 8), f, alpha=0.01)
    assert pushed.decision == U.ABSENT and pushed.flagged == 0 and pushed.flagged_low > 0
    assert pushed.min_low_p <= pushed.threshold < pushed.min_p
    # a model that never saw the person is on neither tail
    outside = U.person_test(base + rng.normal(0, 1, 8), f, alpha=0.01)
    assert outside.decision == U.OUT and outside.flagged_low == 0


@settings(max_examples=40, deadline=None)
@given(st.floats(-20, 20), st.floats(-20, 20), st.floats(0.1, 5), st.floats(-40, 40),
       st.integers(2, 50))
def test_the_two_tails_of_a_record_sum_to_one(mu_in, mu_out, sd, x, k):
    f = _fit(mu_in, mu_out, sd, sd, k=k)
    hi, lo = U.out_p_values([x], f), U.out_low_p_values([x], f)
    assert hi[0] + lo[0] == pytest.approx(1.0, abs=1e-9)


def test_person_test_without_power_is_undecided():
    rng = np.random.default_rng(1)
    a, b, base = _shadows(rng, 3, 4, gap=0.2)  # IN and OUT shadows barely differ
    res = U.person_test(base, U.fit_gaussians(a, b), alpha=0.01)
    assert res.decision == U.UNDECIDED and res.power < 0.8


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 10_000), st.integers(2, 6), st.integers(1, 12), st.floats(0, 10))
def test_person_test_outputs_are_well_formed(seed, k, n, gap):
    rng = np.random.default_rng(seed)
    a, b, base = _shadows(rng, k, n, gap)
    res = U.person_test(base + rng.normal(0, 1, n), U.fit_gaussians(a, b), alpha=0.05)
    assert all(0.0 <= p <= 1.0 for p in res.p_values) and 0.0 <= res.power <= 1.0
    assert res.decision in (U.IN, U.OUT, U.UNDECIDED, U.ABSENT)
    assert (res.decision == U.IN) == (res.min_p <= res.threshold)
    assert (res.decision == U.ABSENT) == (res.min_p > res.threshold >= res.min_low_p)


def test_calibration_counts_and_refuses_unresolvable_rates():
    rng = np.random.default_rng(2)
    a, b, _ = _shadows(rng, 4, 30, gap=8.0)
    cal = U.calibrate(a, b, alpha=0.01)
    assert cal.available and cal.instances_in == 120 and cal.instances_out == 120
    assert cal.tpr_at["0.01"] is not None and cal.tpr_at["0.01"] > 0.9
    assert cal.tpr_at["0.001"] is None and "1000" in cal.reasons["0.001"]
    assert cal.person_detected == 4 and cal.person_false == 0 and cal.auc > 0.99


def test_calibration_needs_three_shadows_per_side():
    rng = np.random.default_rng(3)
    a, b, _ = _shadows(rng, 2, 5, gap=5.0)
    cal = U.calibrate(a, b, alpha=0.01)
    assert not cal.available and cal.tpr_at == {"0.01": None, "0.001": None}
    assert "at least 3 shadows" in cal.reasons["0.01"]


@pytest.mark.parametrize("instances, fpr, ok", [(100, 0.01, True), (99, 0.01, False),
                                                (1000, 0.001, True), (999, 0.001, False)])
def test_resolvable(instances, fpr, ok):
    assert U.resolvable(instances, fpr) is ok
