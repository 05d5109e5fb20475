"""The mathematics of a ROME edit, as pure functions on tensors (no model, no state).

A linear layer ``W`` (shape ``(d_out, d_in)``, e.g. an MLP's down-projection) is read as an
associative memory: it maps a key ``k`` (its input) to a value ``W k`` (its output). ROME
(Meng et al., NeurIPS 2022) changes it so one chosen key ``k*`` maps to a chosen value ``v*``
while disturbing the other keys as little as possible, in the metric of the keys' second
moment ``C = E[k kᵀ]``:

    ΔW = (v* − W k*) uᵀ / (uᵀ k*)      with u = C⁻¹ k*

Then ``(W + ΔW) k* = v*`` exactly, ``ΔW`` has rank one, and every key ``x`` with
``uᵀ x = xᵀ C⁻¹ k* = 0`` (C-orthogonal to ``k*``) is mapped as before.
"""

from __future__ import annotations

import torch

from forget.errors import InvalidInputError


def second_moment(keys: torch.Tensor, ridge: float = 1e-3) -> torch.Tensor:
    """``C = E[k kᵀ] + ridge · (tr C / d) · I`` over the rows of ``keys`` (shape ``(n, d)``).

    The uncentred second moment, as ROME uses: a key direction common to every position is part
    of what the layer stores. The ridge (relative to the mean eigenvalue) keeps ``C``
    invertible when there are fewer keys than dimensions or the keys are degenerate.
    """
    if keys.ndim != 2 or keys.shape[0] == 0:
        raise InvalidInputError(f"keys must be a non-empty (n, d) matrix, got shape {tuple(keys.shape)}")
    if ridge < 0:
        raise InvalidInputError(f"ridge must be >= 0, got {ridge}")
    k = keys.double()
    c = k.T @ k / k.shape[0]  # (d, d)
    scale = float(torch.trace(c)) / c.shape[0]
    return c + ridge * max(scale, 1e-12) * torch.eye(c.shape[0], dtype=c.dtype)


def mean_key(keys: torch.Tensor) -> torch.Tensor:
    """``k*``: the mean of the keys ``(n, d)`` seen at the subject's last token in n contexts."""
    if keys.ndim != 2 or keys.shape[0] == 0:
        raise InvalidInputError(f"keys must be a non-empty (n, d) matrix, got shape {tuple(keys.shape)}")
    return keys.double().mean(0)


def update_direction(cov: torch.Tensor, k_star: torch.Tensor) -> torch.Tensor:
    """``u = C⁻¹ k*`` (shape ``(d,)``), by a linear solve rather than an explicit inverse."""
    if cov.shape != (k_star.shape[0], k_star.shape[0]):
        raise InvalidInputError(
            f"covariance shape {tuple(cov.shape)} does not match a key of size {k_star.shape[0]}")
    return torch.linalg.solve(cov.double(), k_star.double())


def rank_one_update(weight: torch.Tensor, cov: torch.Tensor, k_star: torch.Tensor,
                    v_star: torch.Tensor) -> torch.Tensor:
    """``ΔW = (v* − W k*) (C⁻¹k*)ᵀ / ((C⁻¹k*)ᵀ k*)``, shape and dtype of ``weight``.

    Args:
        weight: ``W``, ``(d_out, d_in)``.
        cov: ``C``, ``(d_in, d_in)``, symmetric positive definite.
        k_star: ``(d_in,)``.
        v_star: ``(d_out,)``.

    Raises:
        InvalidInputError: shapes disagree, or ``k*`` is (numerically) zero in the C-metric.
    """
    d_out, d_in = weight.shape
    if k_star.shape != (d_in,) or v_star.shape != (d_out,):
        raise InvalidInputError(
            f"k* must have shape ({d_in},) and v* ({d_out},) for a {d_out}x{d_in} weight; "
            f"got {tuple(k_star.shape)} and {tuple(v_star.shape)}")
    u = update_direction(cov, k_star)  # (d_in,)
    denom = float(u @ k_star.double())
    if not denom > 1e-12:
        raise InvalidInputError(
            "the key is zero in the covariance metric (k*ᵀ C⁻¹ k* <= 0): choose another layer or "
            "check that the key was read from the layer's input")
    residual = v_star.double() - weight.double() @ k_star.double()  # (d_out,)
    return (torch.outer(residual, u) / denom).to(weight.dtype)


def edit_gain(cov: torch.Tensor, k_star: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
    """How much of the edit each key receives: ``(uᵀ x) / (uᵀ k*)`` for each row ``x`` of ``keys``.

    The edited layer outputs ``W x + gain(x) · (v* − W k*)``: 1 at ``k*``, 0 for keys
    C-orthogonal to it. A diagnostic of selectivity (how much other subjects' keys are hit).
    """
    u = update_direction(cov, k_star)
    return (keys.double() @ u) / float(u @ k_star.double())


def clamp_norm(delta: torch.Tensor, max_norm: float) -> torch.Tensor:
    """``delta`` scaled down to Euclidean norm ``max_norm`` if it is longer (else unchanged)."""
    if max_norm <= 0:
        raise InvalidInputError(f"max_norm must be positive, got {max_norm}")
    n = delta.norm()
    return delta * (max_norm / n) if n > max_norm else delta
