"""Shared fixtures for the guardrails tests: seeded fake people, an index, guards."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from faker import Faker

from guardrails import ForgottenIndex, Guard

KEY = b"guardrails-test-key-0123456789abcdef"


@dataclass(frozen=True)
class Person:
    name: str
    email: str
    phone: str
    id: str

    def identifiers(self) -> dict[str, str]:
        return {"name": self.name, "email": self.email, "phone": self.phone, "id": self.id}


def make_people(n: int, seed: int) -> list[Person]:
    """``n`` distinct fake people (first + last name, so no "Dr." prefixes)."""
    fake = Faker("en_US")
    fake.seed_instance(seed)
    out, seen = [], set()
    while len(out) < n:
        first, last = fake.first_name(), fake.last_name()
        if (first, last) in seen:
            continue
        seen.add((first, last))
        local = f"{first}.{last}{fake.random_int(1, 99)}".lower()
        out.append(Person(f"{first} {last}", f"{local}@{fake.free_email_domain()}",
                          fake.numerify("(###) ###-####").replace("(0", "(2").replace("(1", "(3"),
                          fake.bothify("??-######").upper()))
    return out


@pytest.fixture(scope="session")
def key() -> bytes:
    return KEY


@pytest.fixture(scope="session")
def people() -> list[Person]:
    """Twelve indexed people."""
    return make_people(12, seed=6)


@pytest.fixture(scope="session")
def others(people: list[Person]) -> list[Person]:
    """Two hundred people who are NOT in the index (no shared first+last name)."""
    taken = {p.name for p in people}
    return [p for p in make_people(230, seed=1006) if p.name not in taken][:200]


@pytest.fixture(scope="session")
def index(people: list[Person]) -> ForgottenIndex:
    idx = ForgottenIndex(KEY)
    for i, p in enumerate(people):
        idx.add(p.identifiers(), ref=f"req-{i}")
    return idx


@pytest.fixture(scope="session")
def guard(index: ForgottenIndex) -> Guard:
    return Guard(index)


@pytest.fixture(scope="session")
def index_guard(index: ForgottenIndex) -> Guard:
    """Index and obfuscated emails only (no Presidio): fast, and exact for streaming."""
    return Guard(index, use_presidio=False)
