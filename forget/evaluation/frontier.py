"""The measured cost / pass-rate frontier, and the choice ``auto`` makes from it.

``bench/frontier.py`` writes one row per method and strength setting: the share of subjects
whose unlearned model passed the calibrated audit and the cost as a share of retraining.
:func:`frontier_choice` is the rule: the cheapest row whose measured pass rate reaches the
bar; none when no row does (then retraining is the answer).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from forget.errors import InvalidInputError

# A row's cost: the larger of its wall-time and gradient-step shares of retraining (wall time
# on shared machines is noisy, steps ignore per-step price: the larger of the two is the
# conservative figure), then wall, then steps.
COST_KEYS = ("wall", "steps")


def _cost(row: Mapping[str, Any]) -> tuple[float, ...]:
    share = row.get("share_of_retrain")
    if not isinstance(share, Mapping):
        raise InvalidInputError("a frontier row needs share_of_retrain {wall, steps}; read "
                                "rows from bench/results/frontier.json")
    out = []
    for key in COST_KEYS:
        v = share.get(key)
        if not isinstance(v, int | float) or isinstance(v, bool) or not math.isfinite(v) or v < 0:
            raise InvalidInputError(f"share_of_retrain.{key} must be a finite number >= 0, "
                                    f"got {v!r}; re-run bench/frontier.py")
        out.append(float(v))
    return (max(out), *out)


def frontier_choice(rows: Sequence[Mapping[str, Any]], min_pass_rate: float = 0.8
                    ) -> dict[str, Any] | None:
    """The cheapest method and setting whose measured pass rate is at least ``min_pass_rate``.

    Args:
        rows: frontier rows (``method``, ``setting``, ``overrides``, ``pass_rate``,
            ``share_of_retrain: {wall, steps}``), as ``bench/frontier.py`` writes them.
        min_pass_rate: the bar, in [0, 1].

    Returns:
        ``{"method", "setting", "overrides", "pass_rate", "share_of_retrain"}`` of the row
        with the lowest cost (the larger of its wall and steps shares; then wall, steps,
        method and setting names, so the choice does not depend on row order), or ``None``
        when no row reaches the bar. A row costing a full retrain or more by either share is
        never chosen: retraining itself is then no dearer, and exact.
    """
    if not 0.0 <= min_pass_rate <= 1.0:
        raise InvalidInputError(f"min_pass_rate is a share: use 0 <= min_pass_rate <= 1, got "
                                f"{min_pass_rate}")
    best: tuple[tuple, Mapping[str, Any]] | None = None
    for row in rows:
        rate = row.get("pass_rate")
        if not isinstance(rate, int | float) or not 0.0 <= rate <= 1.0:
            raise InvalidInputError(f"pass_rate must be a share in [0, 1], got {rate!r}")
        cost = _cost(row)
        if rate < min_pass_rate or cost[0] >= 1.0:
            continue
        key = (cost, str(row.get("method")), str(row.get("setting")))
        if best is None or key < best[0]:
            best = (key, row)
    if best is None:
        return None
    row = best[1]
    return {"method": row["method"], "setting": row["setting"],
            "overrides": dict(row.get("overrides") or {}), "pass_rate": row["pass_rate"],
            "share_of_retrain": dict(row["share_of_retrain"])}


def load_frontier(path: Path | str) -> list[dict[str, Any]]:
    """The rows of a ``frontier.json``."""
    data = json.loads(Path(path).read_text())
    rows = data.get("rows") if isinstance(data, dict) else None
    if not isinstance(rows, list):
        raise InvalidInputError(f"{path} has no 'rows' list: it is not bench/frontier.py output")
    return rows


# The rows ``auto`` reads when no frontier is given: bench/results/frontier.json in compact
# form (method, setting, overrides, pass rate, cost), shipped with the package.
PACKAGED = Path(__file__).with_name("frontier_measured.json")
ROW_KEYS = ("method", "setting", "overrides", "pass_rate", "passed", "of", "share_of_retrain")


def compact_frontier(data: Mapping[str, Any]) -> dict[str, Any]:
    """The part of a ``bench/frontier.py`` result that ``auto`` needs: its rows without the
    per-subject detail, with where they were measured (command, machine, target)."""
    rows = data.get("rows")
    if not isinstance(rows, list):
        raise InvalidInputError("the frontier result has no 'rows' list: pass the output of "
                                "bench/frontier.py")
    return {"source": "bench/results/frontier.json", "command": data.get("command"),
            "machine": data.get("machine"), "target": data.get("target"),
            "rows": [{k: r[k] for k in ROW_KEYS if k in r} for r in rows]}


def packaged_frontier() -> list[dict[str, Any]]:
    """The frontier measured by ``bench/frontier.py`` on the suite's tiny model (shipped)."""
    return load_frontier(PACKAGED)


def auto_frontier_choice(frontier: Path | str | Sequence[Mapping[str, Any]] | None = None,
                         min_pass_rate: float = 0.8) -> dict[str, Any] | None:
    """What ``auto`` tries first on a model trained in one piece: the cheapest row of
    ``frontier`` (a ``frontier.json`` path or its rows; default: the packaged measurement)
    passing at least ``min_pass_rate`` of subjects, or ``None`` (no method qualifies)."""
    if frontier is None:
        rows: Sequence[Mapping[str, Any]] = packaged_frontier()
    elif isinstance(frontier, str | Path):
        path = Path(frontier)
        if not path.is_file():
            raise InvalidInputError(f"frontier file {path} does not exist: pass the JSON that "
                                    "bench/frontier.py wrote")
        try:
            rows = load_frontier(path)
        except json.JSONDecodeError as e:
            raise InvalidInputError(f"frontier file {path} is not JSON ({e.msg}): pass the "
                                    "JSON that bench/frontier.py wrote") from None
    else:
        rows = frontier
    return frontier_choice(rows, min_pass_rate)
