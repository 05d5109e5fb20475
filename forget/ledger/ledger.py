"""The :class:`Ledger`: the request queue and tamper-evident record of every change to it.

Each verb is one database transaction that updates the request tables and appends one event
to the hash chain, so the two cannot disagree unless someone edits the database (which
``verify`` detects). Key material is described in :mod:`forget.ledger.crypto`.
"""

from __future__ import annotations

import builtins
import json
import logging
import os
import time
import uuid
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import exc, func, insert, inspect, select

from forget.ledger import crypto
from forget.ledger import models as m
from forget.ledger.chain import Checkpoint
from forget.ledger.errors import (
    IdempotencyConflictError,
    InvalidRequestError,
    KeyMaterialError,
    LeaseError,
    LedgerIntegrityError,
    LedgerNotFoundError,
    RequestNotFoundError,
    ShreddedError,
)
from forget.ledger.lines import LinesMixin
from forget.ledger.privacy import check_no_personal_data, name_ok
from forget.ledger.records import Event, RequestRecord, StepRecord, VerifyReport, iso
from forget.ledger.request import DeletionRequest, Identifiers, normalise
from forget.ledger.states import State
from forget.ledger.store import check_sqlite_file, make_engine, resolve

if TYPE_CHECKING:
    from sqlalchemy import Connection
from forget.ledger.transitions import TransitionsMixin
from forget.ledger.txn import Tx, row_to_record
from forget.ledger.verify import verify_ledger
from forget.ledger.workers import WorkersMixin

log = logging.getLogger(__name__)
_NOT_FOUND = "no request with that id in this ledger; check it with `forget request list`"


class Ledger(TransitionsMixin, WorkersMixin, LinesMixin):
    """A request ledger on SQLite (a path) or PostgreSQL (a ``postgresql+psycopg://`` URL).

    Args:
        url_or_path: a file path, ``sqlite:///FILE`` or a PostgreSQL URL.
        key_dir: directory of the ledger secret and signing key (default: the environment
            variables, else a directory under the key home for a SQLite file, never beside
            it: see :meth:`default_key_dir`; PostgreSQL needs this or the variables).
        create: create the database (and keys) when missing; False raises instead.
        read_only: open without writing anything (verifiers): no file, table or key is
            created, and the connection refuses writes.
    """

    def __init__(self, url_or_path: str | os.PathLike[str], *,
                 key_dir: str | os.PathLike[str] | None = None, create: bool = True,
                 read_only: bool = False) -> None:
        self.url, self.path = resolve(url_or_path)
        create = create and not read_only
        if self.path is not None and not create:
            check_sqlite_file(self.path)  # before SQLite touches it (it would write a header)
        if self.path is not None and create:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self.key_dir = Path(key_dir) if key_dir is not None else None
        if self.key_dir is not None and not create and not self.key_dir.is_dir():
            raise KeyMaterialError(
                "the --key-dir directory does not exist: give the ledger's key directory")
        self.engine = make_engine(self.url, read_only=read_only)
        self.is_postgres = self.engine.dialect.name == "postgresql"
        self._keys: crypto.KeyMaterial | None = None
        try:
            self._meta = self._init_schema(create)
        except exc.DBAPIError as e:  # the message may hold the URL: report its kind only
            self.engine.dispose()
            raise LedgerNotFoundError(
                f"cannot open the ledger database ({type(e.orig).__name__}): check --ledger "
                "(a ledger database), the server and your access rights") from None
        self.ledger_id: str = self._meta["ledger_id"]

    # ---- setup and keys --------------------------------------------------------------

    def _init_schema(self, create: bool) -> dict[str, str]:
        if create:
            try:
                m.metadata.create_all(self.engine)
            except exc.DBAPIError:  # another process created the tables concurrently
                m.metadata.create_all(self.engine)
        elif not inspect(self.engine).has_table(m.meta.name):
            raise LedgerNotFoundError(
                "the database holds no ledger; check --ledger, or submit a request to create one")
        meta = self._read_meta()
        if meta:
            return meta
        if not create:
            raise LedgerNotFoundError("the ledger was never initialised; submit a request first")
        keys = self._load_keys(create=True)
        values = {"format": m.FORMAT_VERSION, "ledger_id": str(uuid.uuid4()),
                  "key_check": keys.fingerprint(), "public_key": keys.public_key.hex(),
                  "created_at": iso(time.time()), "chain": "lock row"}
        try:
            with self.engine.begin() as conn:
                conn.execute(insert(m.meta), [{"key": k, "value": v} for k, v in values.items()])
        except exc.IntegrityError:  # initialised concurrently by another process
            pass
        meta = self._read_meta()
        self._check_keys(keys, meta)
        return meta

    def _read_meta(self) -> dict[str, str]:
        with self._read() as conn:
            return {r.key: r.value for r in conn.execute(select(m.meta))}

    def _load_keys(self, *, create: bool) -> crypto.KeyMaterial:
        if self.key_dir is not None:
            return crypto.from_dir(self.key_dir, create=create)
        env = crypto.from_env()
        if env is not None:
            return env
        if self.path is not None:
            return crypto.from_dir(self.default_key_dir(), create=create)
        if not self.is_postgres and create:
            return crypto.KeyMaterial.generate()  # in-memory SQLite: keys live as long as it
        raise KeyMaterialError(
            f"this ledger needs its key material: pass key_dir (--key-dir DIR) or set "
            f"{crypto.ENV_SECRET} and {crypto.ENV_SIGNING}; see forget/ledger/README.md")

    def default_key_dir(self) -> Path:
        """Where a SQLite ledger keeps its keys without ``key_dir`` or the environment.

        A directory under the key home (:func:`forget.keys.default_ledger_key_dir`), never
        beside the database: whoever copies the database folder must not get the secret with
        it. A ledger made by an older version, whose ``FILE.keys/`` sits beside it, keeps
        using that directory (with a warning saying to move it and pass ``--key-dir``).
        """
        from forget.keys import default_ledger_key_dir

        if self.path is None:
            raise KeyMaterialError("an in-memory or PostgreSQL ledger has no default key directory")
        legacy = Path(f"{self.path}.keys")
        if legacy.is_dir():
            log.warning("the ledger's keys sit beside its database; move them elsewhere and "
                        "pass --key-dir (see forget/ledger/README.md)")
            return legacy
        return default_ledger_key_dir(self.path)

    def _check_keys(self, keys: crypto.KeyMaterial, meta: Mapping[str, str]) -> None:
        if keys.fingerprint() != meta.get("key_check"):
            raise KeyMaterialError(
                f"the key material ({keys.source}) does not belong to this ledger: it was created "
                "with another secret. Use the key files or environment variables made with this "
                "ledger (restore them from backup); see forget/ledger/README.md")
        self._keys = keys

    @property
    def keys(self) -> crypto.KeyMaterial:
        """The ledger's key material (loaded on first use; :class:`KeyMaterialError` if lost)."""
        if self._keys is None:
            self._check_keys(self._load_keys(create=False), self._meta)
        if self._keys is None:  # _check_keys sets it or raises; never reached otherwise
            raise KeyMaterialError("the ledger's keys could not be loaded; see forget/ledger/README.md")
        return self._keys

    def close(self) -> None:
        """Release database connections."""
        self.engine.dispose()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Ledger({'postgresql' if self.is_postgres else str(self.path or 'memory')!r})"

    # ---- plumbing ----------------------------------------------------------------------

    def _read(self) -> Connection:  # a connection in a deferred (read) transaction
        return self.engine.connect().execution_options(sqlite_begin="DEFERRED")

    def _tx(self) -> Tx:
        return Tx(self.engine, postgres=self.is_postgres)

    def _row(self, conn: Any, request_id: str, *, lock: bool = False) -> Any:
        stmt = select(m.requests).where(m.requests.c.id == request_id)
        row = conn.execute(stmt.with_for_update() if lock else stmt).first()
        if row is None:
            raise RequestNotFoundError(_NOT_FOUND)
        return row

    def _decrypt(self, conn: Any, row: Any) -> Identifiers:
        if row.shredded_at is not None:
            raise ShreddedError(
                "this request's identifiers were crypto-shredded when it completed: its data key "
                "was destroyed, so they cannot be recovered (by design)")
        wrapped = conn.execute(select(m.keys.c.wrapped_key)
                               .where(m.keys.c.request_id == row.id)).scalar()
        if wrapped is None or row.identifiers_ct is None:
            raise LedgerIntegrityError(
                "this request has no data key although it was not shredded: the database was "
                "edited outside the ledger; run `forget ledger verify`")
        data_key = self.keys.unwrap(wrapped, row.id)
        plain = crypto.open_sealed(data_key, row.identifiers_ct, row.id)
        return Identifiers.from_dict(json.loads(plain))

    def _guard(self, request_id: str, obj: Any, what: str) -> None:
        """Refuse text/details that carry personal data (the request's own identifiers)."""
        if not obj:
            return
        with self._read() as conn:
            row = self._row(conn, request_id)
            ids = None if row.shredded_at is not None else self._decrypt(conn, row)
        check_no_personal_data(obj, ids, what)

    @staticmethod
    def _worker_ok(row: Any, worker_id: str | None) -> None:
        if worker_id is not None and row.lease_owner != worker_id:
            raise LeaseError(
                "this worker does not hold the lease on the request (it expired and another "
                "worker claimed it, or it was never claimed): stop working on it")

    # ---- submit and read ---------------------------------------------------------------

    def submit(self, request: DeletionRequest) -> RequestRecord:
        """Record a new request, or return the existing one when resubmitted unchanged.

        Raises:
            IdempotencyConflictError: the id exists with different content.
        """
        if not isinstance(request, DeletionRequest):
            raise InvalidRequestError("submit takes a DeletionRequest")
        keys, rid = self.keys, request.request_id
        fp = keys.content_fingerprint(request.content())
        data_key = AESGCM.generate_key(bit_length=256)
        plain = json.dumps(request.identifiers.to_dict(), ensure_ascii=False).encode()
        digests = sorted({(k, keys.blind_index(k, normalise(k, v)))
                          for k, v in request.identifiers.items()})
        received = request.received_at.timestamp()
        try:
            with self._tx() as tx:
                existing = tx.conn.execute(select(m.requests).where(m.requests.c.id == rid)).first()
                if existing is not None:  # resubmission: nothing is written
                    return self._same(existing, fp, tx.now)
                tx.conn.execute(insert(m.requests).values(
                    id=rid, state=State.RECEIVED.value, stage=State.RECEIVED.value,
                    retryable=False, content_fp=fp, ground=request.ground, channel=request.channel,
                    scope=json.dumps({"models": list(request.models),
                                      "datasets": list(request.datasets)}),
                    identifier_counts=json.dumps(request.identifiers.counts()),
                    received_at=received, updated_at=tx.now, extension_months=0,
                    identifiers_ct=crypto.seal(data_key, plain, rid)))
                tx.conn.execute(insert(m.keys).values(request_id=rid,
                                                      wrapped_key=keys.wrap(data_key, rid)))
                tx.conn.execute(insert(m.index), [{"request_id": rid, "kind": k, "digest": d}
                                                  for k, d in digests])
                tx.append("submitted", rid, {
                    "to": State.RECEIVED.value, "ground": request.ground,
                    "channel": request.channel, "models": list(request.models),
                    "datasets": list(request.datasets), "received_at": iso(received),
                    "identifiers": request.identifiers.counts()})
                rec = row_to_record(self._row(tx.conn, rid), tx.now)
        except exc.IntegrityError:  # the same id was submitted concurrently (PostgreSQL)
            with self._read() as conn:
                existing = conn.execute(select(m.requests).where(m.requests.c.id == rid)).first()
            if existing is None:
                raise
            return self._same(existing, fp, time.time())
        log.debug("request %s submitted", rid)
        return rec

    @staticmethod
    def _same(existing: Any, fp: str, now: float) -> RequestRecord:
        if existing.content_fp != fp:
            raise IdempotencyConflictError(
                "a request with this id already exists with different content: resubmit exactly "
                "the original content to get it back, or use a new request id")
        return row_to_record(existing, now)

    def get(self, request_id: str) -> RequestRecord:
        """The request's current record. Raises :class:`RequestNotFoundError`."""
        with self._read() as conn:
            return row_to_record(self._row(conn, request_id), time.time())

    def list(self, *, states: Iterable[State | str] | None = None, overdue: bool = False,
             limit: int | None = None) -> list[RequestRecord]:
        """Requests, oldest first; ``overdue`` keeps unfinished ones past their deadline."""
        now = time.time()
        stmt = select(m.requests).order_by(m.requests.c.received_at, m.requests.c.id)
        if states is not None:
            stmt = stmt.where(m.requests.c.state.in_([State(s).value for s in states]))
        if overdue:
            stmt = stmt.where(m.requests.c.due_at < now, m.requests.c.state.notin_(
                [State.COMPLETED.value, State.REJECTED.value]))
        if limit is not None:
            stmt = stmt.limit(limit)
        with self._read() as conn:
            return [row_to_record(r, now) for r in conn.execute(stmt)]

    def identifiers(self, request_id: str) -> Identifiers:
        """The subject's identifiers, decrypted. Raises :class:`ShreddedError` after completion."""
        with self._read() as conn:
            return self._decrypt(conn, self._row(conn, request_id))

    def blind_index(self, kind: str, value: str) -> str:
        """The keyed hash under which an identifier of ``kind`` is indexed (hex)."""
        name_ok(kind, "identifier kind")
        if not isinstance(value, str) or not value.strip():
            raise InvalidRequestError("the identifier to look up must be non-empty text")
        return self.keys.blind_index(kind, normalise(kind, value))

    def find(self, *, kind: str, value: str) -> builtins.list[str]:
        """Ids of the requests naming this identifier (looked up by its blind index)."""
        return self.find_by_index(self.blind_index(kind, value))

    def find_by_index(self, digest: str) -> builtins.list[str]:
        """Ids of the requests whose blind index holds ``digest``."""
        with self._read() as conn:
            rows = conn.execute(select(m.index.c.request_id).where(m.index.c.digest == digest)
                                .distinct().order_by(m.index.c.request_id))
            return [r[0] for r in rows]

    def events(self, request_id: str | None = None) -> builtins.list[Event]:
        """The chain's events (all, or one request's), in order, as stored (not verified)."""
        # hash read as text (hex) so a value tampered into another type cannot crash a listing
        cols = [m.events.c.seq, m.events.c.kind, m.events.c.request_id, m.events.c.body,
                func.lower(func.hex(m.events.c.hash)) if not self.is_postgres
                else func.encode(m.events.c.hash, "hex")]
        stmt = select(*cols).order_by(m.events.c.seq)
        if request_id is not None:
            stmt = stmt.where(m.events.c.request_id == request_id)
        out = []
        with self._read() as conn:
            for seq, kind, rid, body, h in conn.execute(stmt):
                try:
                    ev = json.loads(body)
                    at, data = ev["at"], ev["data"]
                except (ValueError, KeyError, TypeError):
                    at, data = "", {"unreadable": True}
                out.append(Event(seq, at, kind, rid, data, h or ""))
        return out

    def steps(self, request_id: str) -> dict[str, StepRecord]:
        """The latest recorded status of each workflow step of a request."""
        self.get(request_id)
        out: dict[str, StepRecord] = {}
        for e in self.events(request_id):
            if e.kind == "step":
                d = e.data
                out[d["step"]] = StepRecord(d["step"], d["status"], e.seq, e.at,
                                            d.get("worker"), d.get("details", {}))
        return out

    # ---- tamper evidence ---------------------------------------------------------------

    def _trusted_public_key(self) -> bytes:
        try:
            return self.keys.public_key
        except KeyMaterialError:  # verifying needs no secret: fall back to the recorded key
            log.warning("ledger key material unavailable; checking checkpoint signatures "
                        "against the public key recorded in the database")
            return bytes.fromhex(self._meta["public_key"])

    def verify(self, *, checkpoint: Checkpoint | str | os.PathLike[str] | None = None) -> VerifyReport:
        """Check the chain, every stored checkpoint, ``checkpoint`` (a file or object) and the
        request table; the report names the first broken position."""
        extra = (checkpoint if isinstance(checkpoint, Checkpoint) or checkpoint is None
                 else Checkpoint.read(checkpoint))
        pub = self._trusted_public_key()
        with self._read() as conn:
            return verify_ledger(conn, ledger_id=self.ledger_id, public_key=pub, extra=extra)

    def checkpoint(self, *, out: str | os.PathLike[str] | None = None) -> Checkpoint:
        """Sign the current head (after verifying the chain), store it, and write it to ``out``.

        Raises:
            LedgerIntegrityError: the chain does not verify (a broken chain is never signed).
        """
        key = self.keys.signing_key
        report = self.verify()
        if not report.ok:
            raise LedgerIntegrityError(
                f"refusing to sign a checkpoint: the ledger does not verify ({report.message}); "
                "run `forget ledger verify`", position=report.first_bad)
        cp = Checkpoint.sign(key, ledger_id=self.ledger_id, size=report.size, head=report.head,
                             time=iso(time.time()))
        with self.engine.begin() as conn:
            conn.execute(insert(m.checkpoints).values(size=cp.size,
                                                      body=json.dumps(cp.to_dict())))
        if out is not None:
            cp.write(out)
        return cp
