"""Key material: where it lives, file modes, environment variables, lost or wrong keys."""

from __future__ import annotations

import shutil
import stat
from pathlib import Path

import pytest
from ledger_helpers import make_request

from forget.keys import default_ledger_key_dir
from forget.ledger import KeyMaterialError, Ledger, LedgerNotFoundError
from forget.ledger.crypto import ENV_SECRET, ENV_SIGNING, KeyMaterial


def test_keys_are_created_0600_apart_from_the_sqlite_file(tmp_path: Path) -> None:
    with Ledger(tmp_path / "l.db") as led:
        led.submit(make_request(1))
        kd = led.default_key_dir()
    assert kd == default_ledger_key_dir(tmp_path / "l.db")
    assert not kd.is_relative_to(tmp_path)  # not beside the database, nor in its folder
    assert not (tmp_path / "l.db.keys").exists()
    assert stat.S_IMODE(kd.stat().st_mode) == 0o700
    for name in ("ledger.secret", "signing.key"):
        assert stat.S_IMODE((kd / name).stat().st_mode) == 0o600


def test_an_older_ledger_keeps_its_keys_beside_it(tmp_path: Path) -> None:
    with Ledger(tmp_path / "old.db", key_dir=tmp_path / "old.db.keys") as led:
        led.submit(make_request(1))
    with Ledger(tmp_path / "old.db", create=False) as led:  # found without --key-dir
        assert led.identifiers("req-0001").name


def test_key_files_are_created_atomically_0600(tmp_path: Path) -> None:
    from forget.keys import guard_key, write_new_key

    assert write_new_key(tmp_path / "k" / "a.key", b"one")
    assert not write_new_key(tmp_path / "k" / "a.key", b"two")  # never overwritten
    assert (tmp_path / "k" / "a.key").read_bytes() == b"one"
    assert stat.S_IMODE((tmp_path / "k" / "a.key").stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "k").stat().st_mode) == 0o700
    key = guard_key(tmp_path / "g" / "index.key")
    assert len(key) == 64 and guard_key(tmp_path / "g" / "index.key") == key
    assert [p.name for p in (tmp_path / "g").iterdir()] == ["index.key"]  # no temporary left


def test_lost_keys_are_an_explained_error_not_a_crash(tmp_path: Path) -> None:
    with Ledger(tmp_path / "l.db") as led:
        led.submit(make_request(1))
        led.checkpoint()
    shutil.rmtree(default_ledger_key_dir(tmp_path / "l.db"))
    led = Ledger(tmp_path / "l.db", create=False)
    for call in (lambda: led.identifiers("req-0001"), lambda: led.submit(make_request(2)),
                 lambda: led.checkpoint(), lambda: led.find(kind="email", value="a@b.org")):
        with pytest.raises(KeyMaterialError, match="missing.*restore"):
            call()
    assert led.get("req-0001").request_id == "req-0001"  # reading states needs no key
    assert led.verify().ok  # nor does verifying (against the recorded public key)
    assert not default_ledger_key_dir(tmp_path / "l.db").exists()  # nothing regenerated
    led.close()


def test_keys_of_another_ledger_are_refused(tmp_path: Path) -> None:
    with Ledger(tmp_path / "a.db") as led:
        led.submit(make_request(1))
    Ledger(tmp_path / "b.db").close()
    with Ledger(tmp_path / "a.db", key_dir=default_ledger_key_dir(tmp_path / "b.db")) as led:
        with pytest.raises(KeyMaterialError, match="does not belong"):
            led.identifiers("req-0001")


def test_explicit_key_dir_and_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with Ledger(tmp_path / "a.db", key_dir=tmp_path / "keys") as led:
        led.submit(make_request(1))
    assert (tmp_path / "keys" / "ledger.secret").exists()
    assert not default_ledger_key_dir(tmp_path / "a.db").exists()

    km = KeyMaterial.generate()
    for k, v in km.to_env().items():
        monkeypatch.setenv(k, v)
    with Ledger(tmp_path / "env.db") as led:
        led.submit(make_request(2))
        assert led.identifiers("req-0002").name
    assert not default_ledger_key_dir(tmp_path / "env.db").exists()
    monkeypatch.delenv(ENV_SIGNING)
    with pytest.raises(KeyMaterialError, match=ENV_SIGNING):
        Ledger(tmp_path / "env2.db")
    monkeypatch.setenv(ENV_SIGNING, "zz")
    monkeypatch.setenv(ENV_SECRET, km.secret.hex())
    with pytest.raises(KeyMaterialError, match="unreadable"):
        Ledger(tmp_path / "env3.db")


def test_postgres_without_key_material_is_explained(pg_url: str) -> None:
    with pytest.raises(KeyMaterialError, match="key_dir"):
        Ledger(pg_url)


def test_opening_a_missing_ledger_without_create(tmp_path: Path) -> None:
    with pytest.raises(LedgerNotFoundError):
        Ledger(tmp_path / "nope.db", create=False)
    assert not (tmp_path / "nope.db").exists()
