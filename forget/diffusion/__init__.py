"""Diffusion models: a tiny text-to-image pipeline whose concepts are easy to tell apart, its
concept classifier, and loading/saving of pipelines with their cards (extra ``diffusion``).

Nothing here imports ``diffusers`` at import time: :func:`require_diffusers` does it, with a
typed error naming the extra to install when it is missing.
"""

from __future__ import annotations

from types import ModuleType

from forget.errors import MissingExtraError


def require_diffusers() -> ModuleType:
    """The ``diffusers`` module, or :class:`MissingExtraError` saying how to install it."""
    try:
        import diffusers
    except ImportError:
        raise MissingExtraError(
            "diffusers is not installed: concept erasure needs the 'diffusion' extra; install it "
            "with `pip install -e '.[diffusion]'` (or `pip install diffusers`)") from None
    return diffusers
