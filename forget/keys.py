"""Where the suite's secret keys live, and how key files are created.

Two kinds of secret are kept apart from what they protect:

- the **guard index key** (HMAC key of the forgotten-subject index): whoever holds it *and*
  the index file can test guesses of identifiers against the index (for short ones, phones
  or national ids, by brute force). So it never lives in ``--out`` beside ``index.json``.
- the **ledger secret and signing key** (see :mod:`forget.ledger.crypto`): the secret opens
  the identifiers of unfinished requests and their blind index; the signing key signs
  checkpoints and certificates. So they never live beside the database.

The default key home is ``$FORGET_KEY_HOME``, else ``$XDG_CONFIG_HOME/forget/keys``, else
``~/.config/forget/keys`` (a 0700 directory). Each ledger or output folder gets its own
sub-directory named after a hash of its absolute path. Services pass ``--key-dir`` or set the
environment variables instead (``FORGET_GUARD_KEY_FILE`` for the workflow's guard key,
``FORGET_GUARD_KEY`` for ``forget guard``, ``FORGET_LEDGER_SECRET`` and ``FORGET_SIGNING_KEY``).

Key files are created atomically with mode 0600 (``os.open`` with ``O_CREAT | O_EXCL``), so
no other user can read one even for an instant and two processes never both create one.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from pathlib import Path

KEY_HOME_ENV = "FORGET_KEY_HOME"
GUARD_KEY_ENV = "FORGET_GUARD_KEY"  # the key itself (forget guard)
GUARD_KEY_FILE_ENV = "FORGET_GUARD_KEY_FILE"  # the workflow's key file


def key_home() -> Path:
    """The directory under which default key directories are made (not created here)."""
    env = os.environ.get(KEY_HOME_ENV)
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CONFIG_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".config"
    return base / "forget" / "keys"


def _tag(path: Path | str) -> str:
    p = Path(path).expanduser().resolve()
    return f"{p.name[:40] or 'root'}-{hashlib.sha256(str(p).encode()).hexdigest()[:16]}"


def default_ledger_key_dir(db_path: Path | str) -> Path:
    """The default key directory of the SQLite ledger at ``db_path`` (outside its folder)."""
    return key_home() / "ledger" / _tag(db_path)


def default_guard_key(out: Path | str) -> Path:
    """The default guard index key of the output folder ``out`` (outside ``out``)."""
    return key_home() / "guard" / f"{_tag(out)}.key"


def make_private_dir(path: Path | str) -> Path:
    """Create ``path`` (and parents) with mode 0700 where it is created."""
    d = Path(path)
    d.mkdir(mode=0o700, parents=True, exist_ok=True)
    return d


def write_new_key(path: Path | str, data: bytes, *, mode: int = 0o600) -> bool:
    """Create ``path`` holding ``data`` with ``mode`` (0600), atomically; never overwrite.

    The file is written under a temporary name opened with ``O_CREAT | O_EXCL`` (mode 0600
    from its first instant) and hard-linked into place, so a reader never sees a partial key
    and a concurrent creator loses cleanly. Returns False when ``path`` already existed.
    """
    path = Path(path)
    make_private_dir(path.parent)
    if path.exists():
        return False
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(tmp, path)  # atomic; fails when another process created it first
        except FileExistsError:
            return False
    finally:
        tmp.unlink(missing_ok=True)
    return True


def guard_key_path(out: Path | str) -> Path:
    """The workflow's guard index key for the output folder ``out``: ``$FORGET_GUARD_KEY_FILE``
    when set, else :func:`default_guard_key` (never inside ``out``)."""
    env = os.environ.get(GUARD_KEY_FILE_ENV)
    return Path(env).expanduser() if env else default_guard_key(out)


def guard_key(path: Path | str) -> bytes:
    """The guard index key at ``path``, created (64 hex characters, 0600) when missing."""
    path = Path(path)
    write_new_key(path, secrets.token_hex(32).encode() + b"\n")
    return path.read_bytes().strip()
