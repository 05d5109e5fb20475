"""Helpers for the certified-method tests (plain functions; a uniquely named module)."""

from __future__ import annotations

import torch

from forget.methods._certified_head import unit_rows


def convex_problem(n: int = 100, s: int = 10, seed: int = 0
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """Two-class data on unit rows (n, 4); the first ``s`` points sit apart (the ones deleted),
    so that removing them moves the optimum visibly."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, generator=g, dtype=torch.float64)
    y = (x[:, 0] > 0).long()
    x[:s] = torch.tensor([0.0, 3.0, 0.0], dtype=torch.float64) + 0.1 * torch.randn(
        s, 3, generator=g, dtype=torch.float64)
    y[:s] = 0
    return unit_rows(x), y
