"""The mathematics of certified deletion by noisy gradient descent, as pure functions.

The bound used is the Langevin-unlearning bound of Chien, Wang, Chen & Li, "Langevin
Unlearning: A New Perspective of Noisy Gradient Descent for Machine Unlearning" (NeurIPS 2024,
arXiv:2401.10371), strongly convex case. We could not confirm the constants of Chourasia &
Shah's theorem ("Forget Unlearning", ICML 2023, Thm. 3.2) from the paper text available to us,
so this module does not implement theirs; every guarantee text says which bound was used.

Setting (what the bound assumes; :func:`check_assumptions` checks what can be checked):

- objective ``F_D(θ) = (1/n) Σ_i ℓ(θ; d_i) + (λ/2)‖θ‖²`` with each ``ℓ(·; d)`` convex,
  ``M``-Lipschitz (per-example gradients are clipped to norm ``M``; for softmax regression on
  features of norm ≤ 1 the true bound is ``√2``, so clipping at ``M ≥ √2`` never changes a
  gradient and convexity is kept) and ``L_ℓ``-smooth; ``F_D`` is then ``m = λ``-strongly
  convex and ``L = L_ℓ + λ``-smooth;
- full-batch noisy GD ``θ ← θ − η ∇F_D(θ) + sqrt(2ησ²) ξ``, ``ξ ~ N(0, I)``, ``η ≤ 1/L``;
- deletion of ``S`` of the ``n`` training points: continue the same iteration on the remaining
  data from the current ``θ`` for ``K`` steps.

The bound (in the form the project's issue states it): the Rényi divergence of order ``α``
between the distribution of ``θ`` after ``K`` deletion steps and that of retraining on the
remaining data is at most

    ε_R(K, α) = exp(−K m η / α) · 4 α S² M² / (m σ² n²),

and by the usual RDP-to-DP conversion the pair is ``(ε_R + ln(1/δ)/(α−1), δ)``-indistinguishable.
The second factor is the initial divergence (the noisy-GD learner is itself ``(α, ε_0)``-RDP
for a change of ``S`` points: the mean gradient moves by at most ``2SM/n``); the first is the
contraction of Rényi divergence under Langevin steps with LSI constant ``σ²/m``. The rate
``mη/α`` per step is half the continuous-time rate ``2mη/α`` and so conservative.

On ``m``: the issue writes ``m = λn``, the strong-convexity constant of the *summed* objective
``Σ ℓ_i + (nλ/2)‖θ‖²``. This module's iteration uses the *mean* objective above (its gradient
is what the update applies, its ``σ²`` is the temperature), whose constant is ``m = λ``; the
``n²`` in the bound belongs to that mean form. Using ``λn`` here would overstate the
contraction by a factor ``n`` and certify too few steps.
"""

from __future__ import annotations

import math

from forget.errors import InvalidInputError

BOUND_NAME = "Chien et al. 2024 (Langevin unlearning, NeurIPS), strongly convex full-batch bound"
SOFTMAX_LIPSCHITZ = math.sqrt(2.0)  # ‖(p − y) xᵀ‖ ≤ ‖p − y‖ ‖x‖ ≤ √2 for ‖x‖ ≤ 1
SOFTMAX_SMOOTHNESS = 0.5  # λ_max(diag(p) − ppᵀ) ≤ 1/2, times ‖x‖² ≤ 1


def _positive(**values: float) -> None:
    for name, v in values.items():
        if not (isinstance(v, int | float) and math.isfinite(v) and v > 0):
            raise InvalidInputError(f"{name} must be a positive finite number, got {v!r}")


def initial_divergence(*, alpha: float, n: int, s: int, lipschitz: float, sigma: float,
                       m: float) -> float:
    """``ε_0 = 4 α S² M² / (m σ² n²)``: Rényi-DP of the noisy-GD learner for ``S`` changed points.

    Args:
        alpha: the Rényi order (> 1).
        n: training points before the deletion.
        s: points deleted (0 <= s <= n).
        lipschitz: ``M``, the per-example gradient bound (the clipping norm).
        sigma: the noise scale ``σ`` (each step adds ``sqrt(2ησ²) N(0, I)``).
        m: the strong-convexity constant of the objective (``λ`` for the mean form).
    """
    _positive(lipschitz=lipschitz, sigma=sigma, m=m)
    if not alpha > 1:
        raise InvalidInputError(f"alpha (the Rényi order) must be > 1, got {alpha!r}")
    if not (isinstance(n, int) and n >= 1 and isinstance(s, int) and 0 <= s <= n):
        raise InvalidInputError(f"need integers 0 <= s <= n with n >= 1, got s={s!r}, n={n!r}")
    return 4.0 * alpha * s * s * lipschitz * lipschitz / (m * sigma * sigma * n * n)


def deletion_rdp(k: int, *, alpha: float, eta: float, n: int, s: int, lipschitz: float,
                 sigma: float, m: float) -> float:
    """``ε_R(K, α) = exp(−K m η / α) · ε_0``: Rényi divergence to retraining after ``K`` steps.

    Chien et al. 2024, Langevin unlearning, strongly convex full-batch case (see the module
    docstring for the assumptions and the choice ``m = λ``).
    """
    if not (isinstance(k, int) and k >= 0):
        raise InvalidInputError(f"k (deletion steps) must be an integer >= 0, got {k!r}")
    _positive(eta=eta)
    eps0 = initial_divergence(alpha=alpha, n=n, s=s, lipschitz=lipschitz, sigma=sigma, m=m)
    return math.exp(-k * m * eta / alpha) * eps0


def rdp_to_dp(eps_rdp: float, *, alpha: float, delta: float) -> float:
    """``ε = ε_R + ln(1/δ)/(α − 1)``: the (ε, δ) pair implied by an (α, ε_R) Rényi bound."""
    if not alpha > 1:
        raise InvalidInputError(f"alpha (the Rényi order) must be > 1, got {alpha!r}")
    if not 0 < delta < 1:
        raise InvalidInputError(f"delta must lie in (0, 1), got {delta!r}")
    if eps_rdp < 0:
        raise InvalidInputError(f"a Rényi epsilon is never negative, got {eps_rdp!r}")
    return eps_rdp + math.log(1.0 / delta) / (alpha - 1.0)


def deletion_steps(*, target_epsilon: float, alpha: float, eta: float, n: int, s: int,
                   lipschitz: float, sigma: float, m: float) -> int:
    """The fewest ``K`` with ``ε_R(K, α) <= target_epsilon`` (0 when ``ε_0`` is already below).

    Solves ``exp(−K m η / α) ε_0 <= ε`` for ``K``: ``K = ceil((α / (m η)) ln(ε_0 / ε))``.
    """
    _positive(target_epsilon=target_epsilon, eta=eta)
    eps0 = initial_divergence(alpha=alpha, n=n, s=s, lipschitz=lipschitz, sigma=sigma, m=m)
    if eps0 <= target_epsilon:
        return 0
    k = math.ceil(alpha / (m * eta) * math.log(eps0 / target_epsilon))
    # Guard against rounding at the boundary: the returned K must satisfy the bound.
    while deletion_rdp(k, alpha=alpha, eta=eta, n=n, s=s, lipschitz=lipschitz, sigma=sigma,
                       m=m) > target_epsilon:
        k += 1
    return k


def max_step_size(*, smoothness: float, lam: float) -> float:
    """``1/L`` with ``L = L_ℓ + λ``: the largest step size the bound allows."""
    _positive(lam=lam)
    if smoothness < 0:
        raise InvalidInputError(f"smoothness must be >= 0, got {smoothness!r}")
    return 1.0 / (smoothness + lam)


def check_assumptions(*, eta: float, lam: float, clip: float, smoothness: float = SOFTMAX_SMOOTHNESS,
                      lipschitz: float = SOFTMAX_LIPSCHITZ) -> None:
    """Refuse hyper-parameters under which the bound does not hold (names the fix).

    Raises:
        InvalidInputError: ``η > 1/(L_ℓ + λ)``, or ``clip < lipschitz`` (clipping would then
            change gradients and the update would no longer be the gradient of a convex loss).
    """
    _positive(eta=eta, lam=lam, clip=clip)
    bound = max_step_size(smoothness=smoothness, lam=lam)
    if eta > bound * (1 + 1e-12):
        raise InvalidInputError(
            f"step size eta={eta} exceeds 1/L = {bound:.6g} (L = {smoothness} + lambda): the "
            "deletion bound needs eta <= 1/L; lower eta")
    if clip < lipschitz * (1 - 1e-12):
        raise InvalidInputError(
            f"clip={clip} is below the loss's Lipschitz constant {lipschitz:.6g}: clipping would "
            "make the update non-convex and void the bound; use clip >= that constant")
