"""``frontier_choice``: the cheapest method/setting whose measured pass rate reaches the bar."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from forget.errors import InvalidInputError
from forget.evaluation.frontier import frontier_choice, load_frontier

share = st.floats(0, 3, allow_nan=False)
rows_st = st.lists(st.fixed_dictionaries({
    "method": st.sampled_from(["undo", "targeted_undo", "npo", "grad_diff"]),
    "setting": st.sampled_from(["a", "b", "c"]),
    "pass_rate": st.sampled_from([0.0, 0.25, 0.5, 0.75, 0.8, 5 / 6, 1.0]),
    "share_of_retrain": st.fixed_dictionaries({"wall": share, "steps": share}),
}), max_size=12)


def eligible(rows, bar):
    return [r for r in rows if r["pass_rate"] >= bar and max(r["share_of_retrain"].values()) < 1]


def cost(r):
    s = r["share_of_retrain"]
    return (max(s["wall"], s["steps"]), s["wall"], s["steps"])


@settings(max_examples=100, deadline=None)
@given(rows=rows_st, bar=st.sampled_from([0.0, 0.5, 0.8, 1.0]), data=st.data())
def test_choice_is_the_cheapest_row_that_passes(rows, bar, data):
    got = frontier_choice(rows, bar)
    ok = eligible(rows, bar)
    if not ok:
        assert got is None
        return
    assert got is not None and got["pass_rate"] >= bar
    assert cost(got) < (1, 1, 1)
    assert all(cost(got) <= cost(r) for r in ok)
    assert any(r["method"] == got["method"] and r["setting"] == got["setting"] for r in ok)
    # the order of the rows does not matter
    assert frontier_choice(data.draw(st.permutations(rows)), bar) == got


def test_measured_examples():
    rows = [
        {"method": "npo", "setting": "default", "pass_rate": 0.0,
         "share_of_retrain": {"wall": 0.03, "steps": 0.03}},
        {"method": "undo", "setting": "a1", "pass_rate": 5 / 6, "overrides": {"alpha": 1.0},
         "share_of_retrain": {"wall": 0.6, "steps": 0.9}},
        {"method": "targeted_undo", "setting": "s", "pass_rate": 0.8,
         "share_of_retrain": {"wall": 0.2, "steps": 0.3}},
        {"method": "undo", "setting": "a2", "pass_rate": 1.0,
         "share_of_retrain": {"wall": 0.5, "steps": 1.1}},  # more steps than retraining: never
    ]
    assert frontier_choice(rows)["method"] == "targeted_undo"
    assert frontier_choice(rows, 0.81) == {
        "method": "undo", "setting": "a1", "overrides": {"alpha": 1.0}, "pass_rate": 5 / 6,
        "share_of_retrain": {"wall": 0.6, "steps": 0.9}}
    assert frontier_choice(rows, 0.9) is None
    assert frontier_choice([]) is None


@pytest.mark.parametrize("rows,bar,word", [
    ([], 1.5, "min_pass_rate"),
    ([{"method": "m", "setting": "s", "pass_rate": 2, "share_of_retrain": {"wall": 0.1,
                                                                         "steps": 0.1}}],
     0.8, "pass_rate"),
    ([{"method": "m", "setting": "s", "pass_rate": 1.0}], 0.8, "share_of_retrain"),
    ([{"method": "m", "setting": "s", "pass_rate": 1.0,
       "share_of_retrain": {"wall": float("nan"), "steps": 0.1}}], 0.8, "wall"),
])
def test_bad_rows_are_typed_errors(rows, bar, word):
    with pytest.raises(InvalidInputError, match=word):
        frontier_choice(rows, bar)


def test_load_frontier(tmp_path):
    path = tmp_path / "frontier.json"
    path.write_text(json.dumps({"rows": [{"method": "m"}]}))
    assert load_frontier(path) == [{"method": "m"}]
    path.write_text(json.dumps({"other": 1}))
    with pytest.raises(InvalidInputError, match="rows"):
        load_frontier(path)


def test_packaged_frontier_is_the_benchmarks_measurement():
    """The rows ``auto`` ships with are bench/results/frontier.json's, compacted: re-running
    bench/frontier.py without refreshing forget/evaluation/frontier_measured.json fails here
    (refresh: ``compact_frontier`` of the new result)."""
    from pathlib import Path

    from forget.evaluation.frontier import PACKAGED, compact_frontier

    bench = Path(__file__).resolve().parents[2] / "bench" / "results" / "frontier.json"
    assert json.loads(PACKAGED.read_text()) == compact_frontier(json.loads(bench.read_text()))


def _plan(frontier, *, allow_retrain=True):
    from forget.core.data import Example, ForgetSet
    from forget.workflow.process import plan_attempts

    person = ForgetSet(examples=[Example(record_id="r1", text="a biography")])
    return plan_attempts("auto", person, max_attempts=2, allow_retrain=allow_retrain,
                         frontier=frontier)


def test_auto_tries_the_cheapest_method_passing_80_percent_then_retrains(tmp_path):
    rows = [{"method": "npo", "setting": "default", "pass_rate": 0.0,
             "share_of_retrain": {"wall": 0.03, "steps": 0.02}},
            {"method": "undo", "setting": "a1.0-d300", "overrides": {"alpha": 1.0,
                                                                    "distil_steps": 300},
             "pass_rate": 0.9, "share_of_retrain": {"wall": 0.5, "steps": 0.6}}]
    assert _plan(rows) == [("undo", {"alpha": 1.0, "distil_steps": 300}), ("retrain", {})]
    assert _plan(rows, allow_retrain=False) == [("undo", {"alpha": 1.0, "distil_steps": 300})]
    path = tmp_path / "mine.json"
    path.write_text(json.dumps({"rows": rows}))
    assert _plan(path)[0][0] == "undo"
    # no row at 80%: the cheap attempt, a stronger one, then retraining (the shipped frontier)
    rows[1]["pass_rate"] = 0.75
    assert _plan(rows) == [("npo", {}), ("npo", {"_scale_steps": 2}), ("retrain", {})]
    assert _plan(None) == [("npo", {}), ("npo", {"_scale_steps": 2}), ("retrain", {})]


def test_a_bad_frontier_file_is_a_typed_error(tmp_path):
    from forget.evaluation.frontier import auto_frontier_choice

    with pytest.raises(InvalidInputError, match="does not exist"):
        auto_frontier_choice(tmp_path / "nope.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(InvalidInputError, match="not JSON"):
        auto_frontier_choice(bad)
