"""Method comparison on a corpus: every method, many subjects, audited with controls.

``run_comparison`` is what ``bench/compare.py`` runs and what notebook 03 reads; see
:mod:`forget.evaluation.compare`.
"""

from forget.evaluation.compare import CompareConfig, run_comparison, scaled
from forget.evaluation.frontier import frontier_choice, load_frontier
from forget.evaluation.select import most_duplicated, most_memorized, random_subjects

__all__ = ["CompareConfig", "frontier_choice", "load_frontier", "most_duplicated",
           "most_memorized", "random_subjects", "run_comparison", "scaled"]
