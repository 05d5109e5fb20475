"""The guardrails error hierarchy.

``guardrails`` stands alone (it never imports ``forget``), so it has its own root,
:class:`GuardrailError`. Each subclass also inherits the builtin it resembles, so
``except ValueError`` in user code still works. Messages name the problem and the fix and
never contain an identifier (personal data).
"""

from __future__ import annotations


class GuardrailError(Exception):
    """Root of every error raised by the ``guardrails`` package."""

    def __str__(self) -> str:  # KeyError would otherwise print the message in quotes
        return str(self.args[0]) if self.args else self.__class__.__name__


class InvalidIdentifierError(GuardrailError, ValueError):
    """An identifier given to the index is empty or too short to match safely."""


class IndexKeyError(GuardrailError, ValueError):
    """The index key is missing, too short, or not the key the index was built with."""


class IndexFormatError(GuardrailError, ValueError):
    """An index file exists but is not a guardrails index (or a newer version of it)."""


class IndexNotFoundError(GuardrailError, FileNotFoundError):
    """An index file does not exist."""


class PolicyError(GuardrailError, ValueError):
    """A policy names an unknown action or an invalid threshold."""


class UnsupportedStreamerError(GuardrailError, TypeError):
    """A streamer that does not emit text (no ``on_finalized_text``) cannot be filtered."""
