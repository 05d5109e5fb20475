"""What the guard does with each kind of finding: block the answer, redact the span, or allow."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from guardrails.errors import PolicyError

FORGOTTEN = "FORGOTTEN_SUBJECT"
"""Entity kind of a match of the forgotten-subject index."""


class Action(StrEnum):
    """What to do with a finding."""

    BLOCK = "block"  # withhold the whole answer (a stream stops there)
    REDACT = "redact"  # replace the span with a placeholder
    ALLOW = "allow"  # report it, leave the text as it is


# Dates and URLs are rarely personal on their own and Presidio's pattern recognizers report
# many of them (every "example.com"); everything else is redacted.
DEFAULT_ACTIONS: Mapping[str, Action] = {"DATE_TIME": Action.ALLOW, "URL": Action.ALLOW}


@dataclass(frozen=True)
class Policy:
    """A per-entity-kind policy.

    Attributes:
        actions: action per entity kind (Presidio's names, plus ``FORGOTTEN_SUBJECT``).
        default: action for kinds not in ``actions``.
        min_score: findings scoring below this are dropped (Presidio gives weak patterns
            0.05-0.3; 0.4 keeps phone numbers, which it scores 0.4).
        placeholder: replacement text; ``{entity}`` is the entity kind.
        block_message: what a blocked answer becomes.
    """

    actions: Mapping[str, Action] = field(default_factory=lambda: dict(DEFAULT_ACTIONS))
    default: Action = Action.REDACT
    min_score: float = 0.4
    placeholder: str = "<{entity}>"
    block_message: str = "[withheld: this answer mentioned personal data that must not be shared]"

    def __post_init__(self) -> None:
        """Validate actions and threshold (configs often come from files)."""
        try:
            object.__setattr__(self, "actions",
                               {str(k): Action(v) for k, v in self.actions.items()})
            object.__setattr__(self, "default", Action(self.default))
        except ValueError as e:
            raise PolicyError(
                f"unknown policy action ({e}); use one of: block, redact, allow"
            ) from None
        if not 0.0 <= self.min_score <= 1.0:
            raise PolicyError(f"min_score must be within [0, 1], got {self.min_score}")

    def action_for(self, entity: str) -> Action:
        """The action for an entity kind."""
        return self.actions.get(entity, self.default)

    @classmethod
    def strict(cls) -> Policy:
        """Block any answer that mentions a forgotten subject; redact other personal data."""
        return cls(actions={**DEFAULT_ACTIONS, FORGOTTEN: Action.BLOCK})
