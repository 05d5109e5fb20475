"""Fixtures of the ledger tests: a SQLite ledger in tmp_path, requests (pg_url: tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from ledger_helpers import finish, make_request  # noqa: F401  (re-exported)

from forget.ledger import Ledger


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    led = Ledger(tmp_path / "ledger.db")
    yield led
    led.close()
