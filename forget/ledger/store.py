"""Database plumbing: ledger URLs, engines, SQLite pragmas and transaction modes.

A bare path means a SQLite file. SQLite runs in WAL mode with ``synchronous=FULL`` (a commit
survives power loss), ``secure_delete`` (deleted rows, such as shredded data keys, are
overwritten) and a 60 s busy timeout; write transactions start with ``BEGIN IMMEDIATE`` so
concurrent writers queue instead of failing on lock upgrade. PostgreSQL URLs
(``postgresql+psycopg://...``) use READ COMMITTED with explicit row locks.
"""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.pool import StaticPool

from forget.errors import InvalidInputError


def resolve(url_or_path: str | os.PathLike[str]) -> tuple[str, Path | None]:
    """Return ``(SQLAlchemy URL, SQLite file or None)`` for a ledger location."""
    s = os.fspath(url_or_path)
    if "://" not in s:
        path = Path(s).expanduser().resolve()
        return f"sqlite:///{path}", path
    try:
        url = make_url(s)
    except Exception:  # sqlalchemy raises ArgumentError; the URL may hold a password: don't echo
        raise InvalidInputError(
            "the ledger URL is malformed: give a path, sqlite:///FILE or "
            "postgresql+psycopg://USER@HOST/DB") from None
    if url.get_backend_name() == "sqlite":
        db = url.database
        return s, (Path(db).expanduser().resolve() if db and db != ":memory:" else None)
    if url.get_backend_name() != "postgresql":
        raise InvalidInputError(
            "unsupported ledger database: use a SQLite path/URL or postgresql+psycopg://...")
    return s, None


def make_engine(url: str) -> Engine:
    """An engine with the ledger's pragmas (SQLite) or connection checks (PostgreSQL)."""
    u = make_url(url)
    if u.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True)
    memory = not u.database or u.database == ":memory:"
    kw = {"poolclass": StaticPool} if memory else {}
    engine = create_engine(url, connect_args={"timeout": 60, "check_same_thread": False}, **kw)

    @event.listens_for(engine, "connect")
    def _connect(dbapi_conn, _record) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves (see _begin)
        cur = dbapi_conn.cursor()
        if not memory:
            cur.execute("PRAGMA journal_mode=WAL")
        for pragma in ("synchronous=FULL", "foreign_keys=ON", "secure_delete=ON",
                       "busy_timeout=60000"):
            cur.execute(f"PRAGMA {pragma}")
        cur.close()

    @event.listens_for(engine, "begin")
    def _begin(conn) -> None:
        # writes take the write lock up front; reads ask for a deferred transaction
        mode = conn.get_execution_options().get("sqlite_begin", "IMMEDIATE")
        conn.exec_driver_sql(f"BEGIN {mode}")

    return engine


def wal_truncate(engine: Engine) -> None:
    """Checkpoint the WAL into the database file and truncate it (best effort).

    After crypto-shredding this removes the old copies of the deleted key from the ``-wal``
    file; it cannot finish while another connection is reading, and then leaves it for the
    next checkpoint.
    """
    raw = engine.raw_connection()
    try:
        conn = raw.driver_connection
        conn.execute("PRAGMA busy_timeout=2000")  # do not hold up a busy ledger for long
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        conn.execute("PRAGMA busy_timeout=60000")
    finally:
        raw.close()
