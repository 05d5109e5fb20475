"""A generic name -> object registry (one per kind of plug-in: methods, attacks, ...).

Registering checks the base class and rejects duplicates; looking up an unknown name raises
an error that suggests the nearest registered names.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator
from typing import Generic, TypeVar

from forget.errors import DuplicateNameError, InvalidInputError, UnknownNameError

T = TypeVar("T")


class Registry(Generic[T]):
    """Maps names to classes (or objects) of one base type.

    Args:
        kind: what is registered, in words ("unlearning method"); used in messages.
        base: every registered class must be a subclass of it (instances: an instance of it).
        error: the error class raised for an unknown name.
    """

    def __init__(
        self, kind: str, base: type, *, error: type[UnknownNameError] = UnknownNameError
    ) -> None:
        self.kind = kind
        self.base = base
        self.error = error
        self._items: dict[str, T] = {}

    def register(self, name: str, item: T) -> T:
        """Register ``item`` under ``name`` and return it (usable as a plain call or decorator)."""
        if not isinstance(name, str) or not name or name != name.strip():
            raise InvalidInputError(f"a {self.kind} name must be a non-empty string, got {name!r}")
        ok = issubclass(item, self.base) if isinstance(item, type) else isinstance(item, self.base)
        if not ok:
            raise InvalidInputError(
                f"cannot register {item!r} as a {self.kind}: it is not a {self.base.__name__}"
            )
        if name in self._items:
            raise DuplicateNameError(
                f"a {self.kind} named {name!r} is already registered; choose another name"
            )
        self._items[name] = item
        return item

    def get(self, name: str) -> T:
        """Return the item registered under ``name``, or raise with near-miss suggestions."""
        try:
            return self._items[name]
        except KeyError:
            pass
        close = difflib.get_close_matches(str(name), list(self._items), n=3, cutoff=0.5)
        hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
        known = ", ".join(sorted(self._items)) or "(none)"
        raise self.error(f"unknown {self.kind} {name!r}.{hint} Registered: {known}.") from None

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._items)
