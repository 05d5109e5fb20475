"""The audits package's error hierarchy.

``audits`` stands alone (it never imports ``forget``), so it has its own root. Each subclass
also inherits the builtin it resembles. Messages name the bad value and the fix, never an
identifier or a text of the audited subject.
"""

from __future__ import annotations


class AuditError(Exception):
    """Root of every error raised by the ``audits`` package."""

    def __str__(self) -> str:  # KeyError would otherwise print the message in quotes
        return str(self.args[0]) if self.args else self.__class__.__name__


class AuditInputError(AuditError, ValueError):
    """An input to an audit is empty, malformed or inconsistent."""


class AuditConfigError(AuditError, ValueError):
    """An audit configuration has an unknown key or a value out of range."""


class AuditConfigNotFoundError(AuditError, FileNotFoundError):
    """An audit configuration file does not exist."""


class LmEvalError(AuditError, RuntimeError):
    """lm-eval could not load or run the audit's utility tasks."""
