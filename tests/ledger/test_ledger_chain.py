"""The hash chain: untouched chains verify; every single mutation is detected at its position.

Mutations are applied to ``(seq, body, hash)`` rows, first in memory (pure ``walk``, many
examples), then to a real SQLite ledger's events table the way an attacker with database
access would, checked through ``Ledger.verify`` and ``forget ledger verify``.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import tempfile
from pathlib import Path

import pytest
import rfc8785
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from forget.ledger import Checkpoint, Ledger, canonical, chain_hash
from forget.ledger.chain import GENESIS, canonical_event, walk

Row = tuple[int, str, str]
texts = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=20)
ascii_texts = st.text(st.characters(max_codepoint=127), max_size=8)


def build_rows(datas: list[dict]) -> list[Row]:
    rows, prev = [], GENESIS
    for i, d in enumerate(datas, 1):
        body = canonical({"seq": i, "at": "2025-01-01T00:00:00.000000Z", "kind": "test",
                          "request": None, "data": d})
        prev = chain_hash(prev, body)
        rows.append((i, body.decode(), prev.hex()))
    return rows


def _hash_at(rows: list[Row], k: int) -> bytes:
    if k == 1:
        return GENESIS
    h = rows[k - 2][2]
    return h if isinstance(h, bytes) else bytes.fromhex(h)


# ---- mutations: each returns (new rows, expected first_bad) -------------------------------

def edit(rows: list[Row], k: int) -> tuple[list[Row], int]:
    seq, body, h = rows[k - 1]
    ev = json.loads(body)
    ev["data"]["tampered"] = True
    return rows[:k - 1] + [(seq, canonical(ev).decode(), h)] + rows[k:], k


def delete(rows: list[Row], k: int) -> tuple[list[Row], int]:
    return rows[:k - 1] + rows[k:], k


def delete_renumber(rows: list[Row], k: int) -> tuple[list[Row], int]:
    return rows[:k - 1] + [(s - 1, b, h) for s, b, h in rows[k:]], k


def swap(rows: list[Row], k: int) -> tuple[list[Row], int]:  # k and k+1 exchange places
    a, b = rows[k - 1], rows[k]
    return rows[:k - 1] + [(a[0], b[1], b[2]), (b[0], a[1], a[2])] + rows[k + 1:], k


def insert(rows: list[Row], k: int) -> tuple[list[Row], int]:
    """A forged event at position k, hashed correctly from its predecessor; later ones shifted."""
    body = canonical({"seq": k, "at": "2025-01-01T00:00:00.000000Z", "kind": "forged",
                      "request": None, "data": {}})
    forged = (k, body.decode(), chain_hash(_hash_at(rows, k), body).hex())
    return rows[:k - 1] + [forged] + [(s + 1, b, h) for s, b, h in rows[k - 1:]], k


def insert_bad_hash(rows: list[Row], k: int) -> tuple[list[Row], int]:
    body = canonical({"seq": k, "at": "x", "kind": "forged", "request": None, "data": {}})
    return rows[:k - 1] + [(k, body.decode(), "00" * 32)] + [(s + 1, b, h) for s, b, h in rows[k - 1:]], k


def rewrite(rows: list[Row], k: int) -> list[Row]:
    """Edit event k and recompute every hash from k on: the chain alone still verifies."""
    out, prev = rows[:k - 1], _hash_at(rows, k)
    for seq, body, _ in rows[k - 1:]:
        if seq == k:
            ev = json.loads(body)
            ev["data"]["tampered"] = True
            body = canonical(ev).decode()
        prev = chain_hash(prev, body.encode())
        out.append((seq, body, prev.hex()))
    return out


MUTATIONS = {"edit": edit, "delete": delete, "delete_renumber": delete_renumber, "swap": swap,
             "insert": insert, "insert_bad_hash": insert_bad_hash}


def _positions(kind: str, n: int) -> range:
    if kind == "swap":
        return range(1, n)
    if kind in ("delete", "delete_renumber"):  # deleting the last one is truncation: checkpoint
        return range(1, n)
    return range(1, n + 1)


# ---- pure ---------------------------------------------------------------------------------

@settings(max_examples=60, deadline=None)
@given(st.lists(st.dictionaries(st.text(max_size=5), texts | st.integers(-(2**53) + 1, 2**53 - 1),
                                max_size=3),
                max_size=150))
def test_untouched_chain_of_any_length_verifies(datas: list[dict]) -> None:
    rows = build_rows(datas)
    res = walk(rows)
    assert res.ok and res.size == len(rows) and res.first_bad is None
    assert res.head == (rows[-1][2] if rows else GENESIS.hex())
    assert walk([(s, b.encode(), bytes.fromhex(h)) for s, b, h in rows]).ok  # bytes as stored


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(sorted(MUTATIONS)), st.integers(2, 40), st.data())
def test_every_single_mutation_is_detected_at_its_position(kind: str, n: int, data) -> None:
    rows = build_rows([{"i": i} for i in range(n)])
    k = data.draw(st.sampled_from(list(_positions(kind, n))))
    mutated, expected = MUTATIONS[kind](rows, k)
    res = walk(mutated)
    assert not res.ok
    assert res.first_bad == expected, res.message


@settings(max_examples=200, deadline=None)
@given(st.recursive(st.none() | st.booleans() | st.integers(-(2**53) + 1, 2**53 - 1)
                    | st.floats(allow_nan=False, allow_infinity=False) | texts,
                    lambda c: st.lists(c, max_size=4)
                    | st.dictionaries(ascii_texts | texts, c, max_size=4),
                    max_leaves=15))
def test_canonical_equals_rfc8785(value) -> None:
    assert canonical({"v": value}) == rfc8785.dumps({"v": value})


@settings(max_examples=200, deadline=None)
@given(st.recursive(st.none() | st.booleans() | st.integers(-(2**53) + 1, 2**53 - 1)
                    | st.floats(allow_nan=False, allow_infinity=False) | ascii_texts,
                    lambda c: st.lists(c, max_size=4) | st.dictionaries(ascii_texts, c, max_size=4),
                    max_leaves=15))
def test_canonical_fast_path_equals_rfc8785(value) -> None:  # ASCII: mostly the fast path
    assert canonical({"v": value, "w": [value]}) == rfc8785.dumps({"v": value, "w": [value]})


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 2**40), texts | ascii_texts, st.none() | texts | ascii_texts,
       st.dictionaries(ascii_texts | texts, st.none() | st.booleans() | st.integers(-(2**53) + 1, 2**53 - 1)
                       | st.floats(allow_nan=False, allow_infinity=False) | texts
                       | st.lists(st.integers(-(2**53) + 1, 2**53 - 1) | ascii_texts, max_size=3),
                       max_size=4))
def test_canonical_event_equals_rfc8785_of_the_envelope(seq, kind, request, data) -> None:  # noqa: ANN001
    env = {"seq": seq, "at": "2025-01-31T10:00:00.000000Z", "kind": kind, "request": request,
           "data": data}
    assert canonical_event(seq, env["at"], kind, request, data) == rfc8785.dumps(env)


@pytest.mark.parametrize("value", [1.0, -0.0, 1e16, 1e21, 1e-7, 0.1, 2**53 - 1, -(2**53) + 1,
                                   "\x7f\x1f\u2028", "é", "\U0001f600", {"\ue000": 1, "\U0001f600": 2}])
def test_canonical_edge_cases(value) -> None:  # noqa: ANN001
    assert canonical({"v": value}) == rfc8785.dumps({"v": value})


def test_hash_is_sha256_of_previous_and_canonical_event() -> None:
    rows = build_rows([{"a": 1}, {"b": "ü"}])
    h1 = hashlib.sha256(GENESIS + rows[0][1].encode()).digest()
    assert rows[0][2] == h1.hex()
    assert rows[1][2] == hashlib.sha256(h1 + rows[1][1].encode()).hexdigest()


# ---- on a real SQLite ledger --------------------------------------------------------------

def _make(dirpath: Path, n: int) -> tuple[Path, Path]:
    db, cp_file = dirpath / "l.db", dirpath / "cp.json"
    led = Ledger(db)
    with led._tx() as tx:
        tx.append_many([("test", None, {"i": i}) for i in range(n)])
    led.checkpoint(out=cp_file)
    led.close()
    return db, cp_file


def _rewrite_table(db: Path, fn) -> None:  # noqa: ANN001 - the attacker, with sqlite3
    con = sqlite3.connect(db)
    rows = con.execute("SELECT seq, body, hash FROM ledger_events ORDER BY seq").fetchall()
    new = fn(rows)
    con.execute("DELETE FROM ledger_events")
    con.executemany("INSERT INTO ledger_events (seq, kind, body, hash) VALUES (?, 'x', ?, ?)",
                    new)
    con.commit()
    con.close()


def _verify(db: Path, cp: Path | None = None):  # noqa: ANN202
    with Ledger(db, create=False) as led:
        return led.verify(checkpoint=cp)


@settings(max_examples=50, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.sampled_from(sorted(MUTATIONS) + ["truncate"]), st.integers(2, 25), st.data())
def test_mutations_of_the_events_table_are_detected(kind: str, n: int, data) -> None:
    with tempfile.TemporaryDirectory() as d:
        db, cp = _make(Path(d), n)
        assert _verify(db, cp).ok
        if kind == "truncate":
            t = data.draw(st.integers(0, n - 1))
            _rewrite_table(db, lambda rows: rows[:t])
            expected = t + 1
        else:
            k = data.draw(st.sampled_from(list(_positions(kind, n))))
            box = {}

            def mutate(rows, kind=kind, k=k, box=box):  # noqa: ANN001, ANN202
                new, box["expected"] = MUTATIONS[kind](rows, k)
                return new
            _rewrite_table(db, mutate)
            expected = box["expected"]
        report = _verify(db, cp)
        assert not report.ok and report.first_bad == expected, report.message


@pytest.mark.parametrize("n", [1, 7])
def test_deleting_the_last_event_is_caught_by_the_checkpoint(tmp_path: Path, n: int) -> None:
    db, cp = _make(tmp_path, n)
    _rewrite_table(db, lambda rows: rows[:-1])
    report = _verify(db, cp)
    assert not report.ok and report.first_bad == n and "truncated" in report.message


def test_consistent_rewrite_is_caught_by_the_exported_checkpoint(tmp_path: Path) -> None:
    db, cp = _make(tmp_path, 12)
    _rewrite_table(db, lambda rows: rewrite(rows, 5))
    con = sqlite3.connect(db)
    con.execute("DELETE FROM ledger_checkpoints")  # the attacker removes the stored ones too
    con.commit()
    con.close()
    assert _verify(db).ok  # the chain alone cannot tell: that is what checkpoints are for
    report = _verify(db, cp)
    assert not report.ok and report.first_bad == 12 and "rewritten" in report.message
    assert "1..12" in report.message


@pytest.mark.parametrize("field", ["signature", "head", "size", "time"])
def test_checkpoint_whose_signature_does_not_verify(tmp_path: Path, field: str) -> None:
    db, cp_file = _make(tmp_path, 6)
    d = json.loads(cp_file.read_text())
    if field == "signature":
        d["signature"] = ("0" if d["signature"][0] != "0" else "1") + d["signature"][1:]
    elif field == "head":
        d["head"] = "ab" * 32
    elif field == "size":
        d["size"] = 5
    else:
        d["time"] = "2000-01-01T00:00:00.000000Z"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(d))
    report = _verify(db, bad)
    assert not report.ok and "signature" in report.message
    assert report.first_bad == d["size"]


def test_checkpoint_signed_by_another_key_is_refused(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    db, cp_file = _make(tmp_path, 4)
    good = Checkpoint.read(cp_file)
    forged = Checkpoint.sign(Ed25519PrivateKey.generate(), ledger_id=good.ledger_id,
                             size=good.size, head=good.head, time=good.time)
    report = _verify(db, forged)
    assert not report.ok and "signature" in report.message


def test_request_table_edited_in_place_is_detected(tmp_path: Path) -> None:
    from ledger_helpers import make_request

    db = tmp_path / "l.db"
    with Ledger(db) as led:
        led.submit(make_request(1))
        led.verify_identity("req-0001")
    con = sqlite3.connect(db)
    con.execute("UPDATE ledger_requests SET state='completed'")
    con.commit()
    con.close()
    report = _verify(db)
    assert not report.ok and report.first_bad == 2 and "request table" in report.message


def test_request_row_deleted_is_detected(tmp_path: Path) -> None:
    from ledger_helpers import make_request

    db = tmp_path / "l.db"
    with Ledger(db) as led:
        for i in (1, 2):
            led.submit(make_request(i))
    con = sqlite3.connect(db)
    con.execute("PRAGMA foreign_keys=OFF")
    con.execute("DELETE FROM ledger_requests WHERE id='req-0002'")
    con.commit()
    con.close()
    report = _verify(db)
    assert not report.ok and report.first_bad == 2 and "missing from the request table" in report.message


def test_checkpoint_refuses_to_sign_a_broken_chain(tmp_path: Path) -> None:
    from forget.ledger import LedgerIntegrityError

    db, _ = _make(tmp_path, 5)
    _rewrite_table(db, lambda rows: edit(rows, 3)[0])
    with Ledger(db, create=False) as led, pytest.raises(LedgerIntegrityError) as e:
        led.checkpoint()
    assert e.value.position == 3
