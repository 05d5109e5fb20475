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


SQLITE_HEADER = b"SQLite format 3\x00"


def check_sqlite_file(path: Path) -> None:
    """Refuse, without writing, a ledger path that is missing or not a SQLite database.

    SQLite treats an empty file as an empty database and writes a header into it on first
    use; a verifier must never change the file it checks.
    """
    from forget.ledger.errors import LedgerNotFoundError

    if not path.exists():
        raise LedgerNotFoundError(
            f"no ledger database at {path}: check --ledger, or submit a request to create one")
    if not path.is_file():
        raise LedgerNotFoundError(f"{path} is not a file: give the ledger database file")
    try:
        with path.open("rb") as f:
            head = f.read(len(SQLITE_HEADER))
    except OSError as e:
        raise LedgerNotFoundError(f"cannot read {path} ({type(e).__name__})") from None
    if head != SQLITE_HEADER:
        what = "an empty file" if not head else "not a SQLite database"
        raise LedgerNotFoundError(f"{path} is {what}, not a ledger: check --ledger")


def make_engine(url: str, *, read_only: bool = False) -> Engine:
    """An engine with the ledger's pragmas (SQLite) or connection checks (PostgreSQL).

    ``read_only``: SQLite connections run with ``query_only`` and leave the journal mode as
    it is; PostgreSQL sessions are ``default_transaction_read_only``.
    """
    u = make_url(url)
    if u.get_backend_name() != "sqlite":
        if read_only:  # keep any options the URL carries (e.g. a search_path)
            opts = u.query.get("options", "")
            opts = " ".join([*([opts] if isinstance(opts, str) else opts),
                             "-c default_transaction_read_only=on"]).strip()
            return create_engine(u.update_query_dict({"options": opts}), pool_pre_ping=True)
        return create_engine(url, pool_pre_ping=True)
    memory = not u.database or u.database == ":memory:"
    kw = {"poolclass": StaticPool} if memory else {}
    engine = create_engine(url, connect_args={"timeout": 60, "check_same_thread": False}, **kw)

    @event.listens_for(engine, "connect")
    def _connect(dbapi_conn, _record) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves (see _begin)
        cur = dbapi_conn.cursor()
        if read_only:
            cur.execute("PRAGMA query_only=ON")
        elif not memory:
            cur.execute("PRAGMA journal_mode=WAL")
        for pragma in ("synchronous=FULL", "foreign_keys=ON", "secure_delete=ON",
                       "busy_timeout=60000"):
            cur.execute(f"PRAGMA {pragma}")
        cur.close()

    @event.listens_for(engine, "begin")
    def _begin(conn) -> None:
        # writes take the write lock up front; reads ask for a deferred transaction
        mode = "DEFERRED" if read_only else \
            conn.get_execution_options().get("sqlite_begin", "IMMEDIATE")
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
