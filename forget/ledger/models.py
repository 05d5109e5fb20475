"""The ledger's tables (SQLAlchemy 2 Core). Times are UNIX seconds (UTC) as doubles.

Nothing here holds an identifier in clear: ``ledger_index`` has keyed hashes (blind index),
``ledger_requests.identifiers_ct`` the AES-GCM ciphertext, ``ledger_keys`` the wrapped data
keys (deleted on completion). ``ledger_events`` is the hash chain; every other table is a
view of it kept for fast queries, and ``verify`` checks the request states against it.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
)

FORMAT_VERSION = "1"

metadata = MetaData()

meta = Table(
    "ledger_meta", metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

requests = Table(
    "ledger_requests", metadata,
    Column("id", String(128), primary_key=True),
    Column("state", String(32), nullable=False),
    Column("stage", String(32), nullable=False),  # last forward state reached
    Column("retryable", Boolean, nullable=False, default=False),
    Column("content_fp", String(64), nullable=False),  # keyed fingerprint, for idempotency
    Column("ground", String(16), nullable=False),
    Column("channel", String(64), nullable=False),
    Column("scope", Text, nullable=False),  # JSON: {"models": [...], "datasets": [...]}
    Column("identifier_counts", Text, nullable=False),  # JSON: {"email": 2, ...}
    Column("received_at", Float, nullable=False),
    Column("verified_at", Float),
    Column("due_at", Float),  # NULL while identity is unverified (clock paused)
    Column("extension_months", Integer, nullable=False, default=0),
    Column("audit_passed", Boolean),
    Column("updated_at", Float, nullable=False),
    Column("completed_at", Float),
    Column("lease_owner", String(128)),
    Column("lease_expires_at", Float),
    Column("identifiers_ct", LargeBinary),  # AES-GCM under the data key
    Column("shredded_at", Float),
    Index("ix_ledger_requests_claim", "stage", "state", "due_at"),
)

keys = Table(
    "ledger_keys", metadata,
    Column("request_id", String(128), ForeignKey("ledger_requests.id"), primary_key=True),
    Column("wrapped_key", LargeBinary, nullable=False),
)

index = Table(
    "ledger_index", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("request_id", String(128), ForeignKey("ledger_requests.id"), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("digest", String(64), nullable=False),
    Index("ix_ledger_index_digest", "digest"),
)

events = Table(
    "ledger_events", metadata,
    # INTEGER on SQLite so the position is the rowid (fast ordered scans)
    Column("seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
           autoincrement=False),
    Column("request_id", String(128)),
    Column("kind", String(32), nullable=False),
    Column("body", Text, nullable=False),  # RFC 8785 canonical JSON, hashed as UTF-8 bytes
    Column("hash", LargeBinary, nullable=False),  # sha256(prev || body), 32 raw bytes
    Index("ix_ledger_events_request", "request_id"),
)

# Model lines: the version of each model line that serves now (its head). A view of the chain
# like the request table: every head move is recorded in the ``completed`` event that made it
# (``data.head``), and the line's first version in a ``model_line_opened`` event.
model_lines = Table(
    "ledger_model_lines", metadata,
    Column("line", String(128), primary_key=True),
    Column("version", String(128), nullable=False),  # the head: the version serving now
    Column("sha256", String(64), nullable=False),
    Column("path", Text, nullable=False),
    Column("first_version", String(128), nullable=False),
    Column("generation", Integer, nullable=False, default=0),  # head moves so far
    Column("request_id", String(128)),  # the request whose completion moved it last
    Column("updated_at", Float, nullable=False),
)

checkpoints = Table(
    "ledger_checkpoints", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("size", BigInteger, nullable=False),
    Column("body", Text, nullable=False),  # the checkpoint as JSON (signed)
)
