"""Rank shifts: what an audited model knows beyond a control, robust to how rare a value is.

With a retrained control (a model that never saw the person), the audit asks whether the
audited model treats the person's real values (identifiers, records) differently from their
look-alikes *than the control does*. Subtracting the two models' log-likelihoods answers that
only when every candidate's difference has the same spread. It does not on real data: a rare
name or a long, oddly formed email sits far out in both models' tails, and the difference of
two far-out numbers swings widely with the training seed alone, so a model that never saw the
person (an exact retrain with another seed) ends up ranked at an extreme and is failed.

A rank shift compares positions instead of numbers: each candidate's rank among all candidates
under the audited model minus its rank under the control. A value both models put at the bottom
(rare, never seen) shifts by about nothing, whatever its raw log-likelihoods. A value the
audited model remembers moves up from wherever the control puts it; one it was pushed to avoid
moves down. The true value's shift is then ranked among the look-alikes' shifts by the same
exact rank test as before (:func:`audits.metrics.rank_p_values`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def ranks(scores: Sequence[float]) -> np.ndarray:
    """Ranks 1..n of ``scores`` (higher score, higher rank); ties share their average rank."""
    x = np.asarray(scores, dtype=np.float64)
    values, inverse, counts = np.unique(x, return_inverse=True, return_counts=True)
    first = np.cumsum(counts) - counts + 1  # the rank of each distinct value's first copy
    return (first + (counts - 1) / 2.0)[inverse.reshape(-1)]


def rank_shift(audited: Sequence[float], control: Sequence[float]) -> np.ndarray:
    """Each candidate's rank under the audited model minus its rank under the control.

    ``audited[i]`` and ``control[i]`` score the same candidate ``i`` (higher: likelier). The
    shifts sum to zero; a model equal to the control shifts nothing.
    """
    a, c = np.asarray(audited, dtype=np.float64), np.asarray(control, dtype=np.float64)
    if a.shape != c.shape or a.ndim != 1:
        raise ValueError(f"rank shifts need two score vectors of one length, got {a.shape} "
                         f"and {c.shape}")
    return ranks(a) - ranks(c)
