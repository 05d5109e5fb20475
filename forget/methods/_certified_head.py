"""The certified head: softmax regression over frozen LM features, trained by noisy GD.

A *head model* is a language-model directory (``save_pretrained`` layout plus the card) with
two more files beside the weights:

- ``certified_head.safetensors``: ``theta`` (C, d+1), the head's weights (bias last);
- ``certified_head.json``: everything the deletion bound needs and the audit re-checks: the
  hyper-parameters (λ, η, σ, clip), the training steps ``K_A``, the record ids trained on and
  their labels, the sha256 of the frozen LM's state dict (features must come from the same
  LM), and the history of certified deletions.

Because the head file ends in ``.safetensors``, the model card's sha256 (over weight files)
covers it: the certificate's before/after hashes change when the head does.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from forget.core.certified import SOFTMAX_LIPSCHITZ, SOFTMAX_SMOOTHNESS, max_step_size
from forget.errors import InvalidInputError, MalformedDataError, ModelNotFoundError
from forget.models.arch import ensure_pad_token

HEAD_WEIGHTS = "certified_head.safetensors"
HEAD_STATE = "certified_head.json"
FORMAT = "forget-certified-head/1"


def has_head(model_dir: Path | str) -> bool:
    """Whether ``model_dir`` holds a certified head beside its language model."""
    d = Path(model_dir)
    return (d / HEAD_WEIGHTS).is_file() and (d / HEAD_STATE).is_file()


# -- features ---------------------------------------------------------------------------------
def unit_rows(x: torch.Tensor) -> torch.Tensor:
    """Append a constant 1 (the bias) to each row and scale it to norm 1: (n, d) -> (n, d+1).

    Unit-norm inputs make softmax cross-entropy √2-Lipschitz and 1/2-smooth in ``theta``.
    """
    x = torch.cat([x.to(torch.float64), torch.ones(x.shape[0], 1, dtype=torch.float64)], dim=1)
    return x / x.norm(dim=1, keepdim=True).clamp_min(1e-12)


@torch.no_grad()
def lm_features(model: Any, tokenizer: Any, texts: Sequence[str], *, batch_size: int = 32,
                max_length: int = 256) -> tuple[torch.Tensor, int]:
    """Mean-pooled last hidden states of the frozen LM, as unit rows: ((n, H+1), tokens read)."""
    ensure_pad_token(tokenizer)  # a GPT-2-style tokenizer pads with eos (masked out below)
    model.eval()
    rows, tokens = [], 0
    for i in range(0, len(texts), batch_size):
        enc = tokenizer(list(texts[i:i + batch_size]), return_tensors="pt", padding=True,
                        truncation=True, max_length=max_length)
        out = model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"],
                    output_hidden_states=True)
        h = out.hidden_states[-1]  # (B, T, H)
        mask = enc["attention_mask"].unsqueeze(-1).to(h.dtype)  # (B, T, 1)
        rows.append((h * mask).sum(1) / mask.sum(1).clamp_min(1))
        tokens += int(enc["attention_mask"].sum())
    hidden = model.config.hidden_size
    x = torch.cat(rows) if rows else torch.zeros(0, hidden)
    return unit_rows(x), tokens


# -- noisy gradient descent -------------------------------------------------------------------
def clipped_mean_grad(theta: torch.Tensor, x: torch.Tensor, y: torch.Tensor, clip: float
                      ) -> tuple[torch.Tensor, int]:
    """Mean of per-example softmax-CE gradients, each clipped to norm ``clip``; and how many were.

    theta (C, d), x (n, d), y (n,) class indices. The per-example gradient is ``(p_i − e_y) x_iᵀ``
    whose norm is ``‖p_i − e_y‖ ‖x_i‖`` (a rank-one matrix), so no (n, C, d) tensor is built.
    """
    p = torch.softmax(x @ theta.T, dim=1)  # (n, C)
    r = p.clone()
    r[torch.arange(len(y)), y] -= 1.0
    norms = r.norm(dim=1) * x.norm(dim=1)  # (n,)
    factor = torch.clamp(clip / norms.clamp_min(1e-300), max=1.0)
    g = (r * factor.unsqueeze(1)).T @ x / max(len(y), 1)  # (C, d)
    return g, int((norms > clip).sum())


def noisy_gd(theta: torch.Tensor, x: torch.Tensor, y: torch.Tensor, *, steps: int, eta: float,
             lam: float, sigma: float, clip: float, generator: torch.Generator
             ) -> tuple[torch.Tensor, int]:
    """``steps`` of ``θ ← θ − η(∇L_D(θ) + λθ) + sqrt(2ησ²) ξ``; returns (θ, clipped gradients)."""
    theta = theta.clone().to(torch.float64)
    scale = math.sqrt(2.0 * eta * sigma * sigma)
    clipped = 0
    for _ in range(steps):
        g, c = clipped_mean_grad(theta, x, y, clip)
        clipped += c
        noise = torch.randn(theta.shape, generator=generator, dtype=torch.float64)
        theta = theta - eta * (g + lam * theta) + scale * noise
    return theta, clipped


def accuracy(theta: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> float:
    if len(y) == 0:
        return float("nan")
    return float(((x @ theta.T).argmax(1) == y).double().mean())


def per_example_loss(theta: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.cross_entropy(x @ theta.T, y, reduction="none")


# -- the head's state -------------------------------------------------------------------------
@dataclass
class HeadTrainConfig:
    """Noisy-GD training of a head (the deletion bound is computed from these).

    Attributes:
        lam: L2 weight λ (the strong convexity m of the mean objective).
        eta: step size; ``None`` takes the largest the bound allows, ``1/(1/2 + λ)``.
        sigma: noise scale σ; each step adds ``sqrt(2ησ²) N(0, I)``. More noise makes
            deletion cheaper (``ε_0`` falls as 1/σ²) and the head a little less accurate:
            on the demo task (``bench/certified.py``) σ = 0.05 / 0.1 / 0.15 needed 17% / 12% /
            8% of retraining's gradient computations, the unlearned head's train accuracy
            0.92 / 0.92 / 0.91.
            The default is the smallest of these that meets the 10% target.
        clip: per-example gradient norm bound M (>= √2, the softmax loss's own bound).
        steps: training steps K_A from ``theta = 0``.
        seed: seeds the noise.
    """

    lam: float = 0.1
    eta: float | None = None
    sigma: float = 0.15
    clip: float = SOFTMAX_LIPSCHITZ
    steps: int = 300
    seed: int = 0

    def resolved_eta(self) -> float:
        return self.eta if self.eta is not None else max_step_size(
            smoothness=SOFTMAX_SMOOTHNESS, lam=self.lam)


@dataclass
class HeadState:
    """A trained head and what its certificate needs (``certified_head.json`` + weights)."""

    theta: torch.Tensor
    classes: list[str]
    record_ids: list[str]
    labels: dict[str, int]
    lam: float
    eta: float
    sigma: float
    clip: float
    train_steps: int
    seed: int
    lm_state_sha256: str
    n_trained: int = 0  # the training set size when the head was trained
    deletions: list[dict[str, Any]] = field(default_factory=list)

    def meta(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("theta")
        return {"format": FORMAT, **d}

    def save(self, model_dir: Path | str) -> None:
        """Write both head files into ``model_dir`` (used inside ``save_model``'s temp dir)."""
        from safetensors.torch import save_file

        d = Path(model_dir)
        save_file({"theta": self.theta.contiguous()}, str(d / HEAD_WEIGHTS))
        (d / HEAD_STATE).write_text(json.dumps(self.meta(), indent=2, sort_keys=True) + "\n")

    @classmethod
    def load(cls, model_dir: Path | str) -> HeadState:
        from safetensors.torch import load_file

        d = Path(model_dir)
        if not has_head(d):
            raise ModelNotFoundError(
                f"no certified head in {d} ({HEAD_WEIGHTS} and {HEAD_STATE} missing); train one "
                "with forget.methods.noisy_gd.build_head_model(...)")
        meta = json.loads((d / HEAD_STATE).read_text())
        if meta.pop("format", None) != FORMAT:
            raise MalformedDataError(f"{d / HEAD_STATE} is not a {FORMAT} file; retrain the head")
        return cls(theta=load_file(str(d / HEAD_WEIGHTS))["theta"], **meta)


def train_head(x: torch.Tensor, y: torch.Tensor, n_classes: int, cfg: HeadTrainConfig
               ) -> tuple[torch.Tensor, int]:
    """K_A noisy-GD steps from ``theta = 0`` on unit rows ``x`` (n, d): (theta (C, d), clipped)."""
    if len(y) == 0:
        raise InvalidInputError("no training examples for the head")
    theta = torch.zeros(n_classes, x.shape[1], dtype=torch.float64)
    gen = torch.Generator().manual_seed(cfg.seed)
    return noisy_gd(theta, x, y, steps=cfg.steps, eta=cfg.resolved_eta(), lam=cfg.lam,
                    sigma=cfg.sigma, clip=cfg.clip, generator=gen)
