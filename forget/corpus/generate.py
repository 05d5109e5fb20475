"""Seeded generator of the synthetic corpora and their ground truth.

Writes four JSONL files (sorted keys, UTF-8, ``\\n`` line ends) and a manifest; the same seed,
subject count and Faker version give the same bytes. Everything is fictitious (Faker).

- ``subjects.jsonl``: one fictitious person a line: subject id, split (train|holdout), identifiers.
- ``people.jsonl``: biography records: record id, subject id, split, text, spans.
- ``code.jsonl``: small code/config files, some with a secret at a known span; split; repeats.
- ``canaries.jsonl``: random secrets in a fixed sentence, repeated k = 1, 5, 20 times (train) or
  never trained on (holdout, the reference population for exposure).

A span is ``{"kind": ..., "start": i, "end": j}`` with ``text[i:j]`` exactly the identifier.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import random
import re
import string
from dataclasses import dataclass
from pathlib import Path

from faker import Faker

from forget.corpus import templates as T
from forget.errors import InvalidInputError

GENERATOR_VERSION = "1"
FILES = ("subjects.jsonl", "people.jsonl", "code.jsonl", "canaries.jsonl")
CANARY_REPEATS = (1, 5, 20)
CODE_REPEATS = (1, 4, 8)  # a secret copied into several files/commits is the common leak
IDENTIFIER_KINDS = (
    "name", "email", "phone", "address", "dob", "national_id", "employer", "city",
)
_FIELD = re.compile(r"\{(\w+)\}")


@dataclass(frozen=True)
class GenerateConfig:
    """What to generate. ``holdout_fraction`` of subjects are never trained on."""

    subjects: int = 40
    seed: int = 0
    holdout_fraction: float = 0.25
    min_records: int = 5
    max_records: int = 20
    canaries_per_repeat: int = 3
    holdout_canaries: int = 6
    code_files: int = 48
    code_secret_fraction: float = 0.5
    code_holdout_fraction: float = 0.25


def fill(template: str, values: dict[str, str]) -> tuple[str, list[dict]]:
    """Fill ``{field}`` placeholders and return the text and the span of each identifier.

    Doubled braces ``{{``/``}}`` are literal braces. Only fields in ``IDENTIFIER_KINDS`` (and
    ``secret``) get spans.
    """
    out: list[str] = []
    spans: list[dict] = []
    pos = 0
    i = 0
    while i < len(template):
        if template.startswith("{{", i) or template.startswith("}}", i):
            out.append(template[i])
            pos += 1
            i += 2
            continue
        m = _FIELD.match(template, i)
        if m:
            field = m.group(1)
            value = values[field]
            if field in IDENTIFIER_KINDS or field == "secret":
                spans.append({"kind": values.get("_secret_kind", field) if field == "secret"
                              else field, "start": pos, "end": pos + len(value)})
            out.append(value)
            pos += len(value)
            i = m.end()
            continue
        out.append(template[i])
        pos += 1
        i += 1
    return "".join(out), spans


def _phone(rng: random.Random) -> str:
    return f"({rng.randint(201, 989)}) {rng.randint(200, 999)}-{rng.randint(0, 9999):04d}"


def _national_id(rng: random.Random) -> str:
    return f"{rng.randint(100, 899):03d}-{rng.randint(10, 99):02d}-{rng.randint(1000, 9999):04d}"


def _dob(rng: random.Random) -> str:
    day = dt.date(1950, 1, 1) + dt.timedelta(days=rng.randint(0, 365 * 50))
    return f"{day:%B} {day.day}, {day.year}"


def _email(fake: Faker, rng: random.Random) -> str:
    user = re.sub(r"[^a-z0-9._]", "", fake.user_name().lower()) or "user"
    return f"{user}{rng.randint(10, 99)}@{rng.choice(T.EMAIL_DOMAINS)}"


def make_subjects(cfg: GenerateConfig, fake: Faker, rng: random.Random) -> list[dict]:
    """Fictitious people with unique full names, emails, phones and ids."""
    n_hold = max(1, round(cfg.subjects * cfg.holdout_fraction)) if cfg.subjects >= 4 else 0
    seen: set[str] = set()
    subjects = []
    for idx in range(cfg.subjects):
        while True:
            ident = {
                "name": f"{fake.first_name()} {fake.last_name()}",
                "email": _email(fake, rng),
                "phone": _phone(rng),
                "address": fake.street_address(),
                "dob": _dob(rng),
                "national_id": _national_id(rng),
                "employer": fake.company(),
                "city": fake.city(),
            }
            keys = {ident["name"], ident["email"], ident["phone"], ident["national_id"]}
            if not keys & seen:
                seen |= keys
                break
        subjects.append({"subject_id": f"S{idx:04d}", "identifiers": ident})
    # The holdout split is a seeded random subset, not the last ids, so ids leak nothing.
    hold = set(rng.sample(range(cfg.subjects), n_hold))
    for idx, s in enumerate(subjects):
        s["split"] = "holdout" if idx in hold else "train"
    return subjects


def make_people(cfg: GenerateConfig, subjects: list[dict], rng: random.Random) -> list[dict]:
    """5-20 biography records per subject; phone, email and id each appear at least once."""
    records = []
    for s in subjects:
        n = rng.randint(cfg.min_records, cfg.max_records)
        chosen = [rng.choice(T.CORE_TEMPLATES[k]) for k in ("phone", "email", "national_id")]
        pool = T.OTHER_TEMPLATES + [t for ts in T.CORE_TEMPLATES.values() for t in ts]
        chosen += [rng.choice(pool) for _ in range(n - len(chosen))]
        rng.shuffle(chosen)
        for j, tpl in enumerate(chosen):
            values = dict(s["identifiers"], hobby=rng.choice(T.HOBBIES), topic=rng.choice(T.TOPICS))
            text, spans = fill(tpl, values)
            records.append({
                "record_id": f"{s['subject_id']}-R{j:02d}",
                "subject_id": s["subject_id"],
                "split": s["split"],
                "text": text,
                "spans": spans,
            })
    return records


def _secret(kind: str, rng: random.Random, subjects: list[dict]) -> tuple[str, str | None]:
    alnum = string.ascii_letters + string.digits
    if kind == "api_key":
        return "sk_live_" + "".join(rng.choices(alnum, k=16)), None
    if kind == "password":
        return "".join(rng.choices(alnum, k=10)) + rng.choice("!#%&*") + str(rng.randint(10, 99)), None
    if kind == "secret_key":
        return "".join(rng.choices("0123456789abcdef", k=24)), None
    if kind == "token":
        return "ghp_" + "".join(rng.choices(alnum, k=20)), None
    if kind == "ip_address":
        return f"10.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}", None
    if kind == "email":  # a real subject's email in a config file links people to code
        s = rng.choice(subjects)
        return s["identifiers"]["email"], s["subject_id"]
    raise InvalidInputError(f"unknown secret kind {kind!r}")


def make_code(cfg: GenerateConfig, subjects: list[dict], rng: random.Random) -> list[dict]:
    """Small code/config files; about half hold one secret at a known span."""
    n_hold = round(cfg.code_files * cfg.code_holdout_fraction)
    hold = set(rng.sample(range(cfg.code_files), n_hold))
    files = []
    for idx in range(cfg.code_files):
        tpl = T.CODE_TEMPLATES[idx % len(T.CODE_TEMPLATES)]
        noun, domain = rng.choice(T.CODE_NOUNS), rng.choice(T.CODE_DOMAINS)
        env = f"{noun.upper()}_{tpl['secret_kind'].upper()}"
        has_secret = rng.random() < cfg.code_secret_fraction
        split = "holdout" if idx in hold else "train"
        subject_id = None
        if has_secret:
            pool = [s for s in subjects if s["split"] == split] or subjects
            secret, subject_id = _secret(tpl["secret_kind"], rng, pool)
            line_tpl = tpl["secret"]
        else:
            secret, line_tpl = "", tpl["clean"]
        # Fill the body around the line; the line's own {secret} is the only span.
        pre, post = tpl["body"].split("{line}")
        pre_text, _ = fill(pre, {"noun": noun, "domain": domain})
        post_text, _ = fill(post, {"noun": noun, "domain": domain})
        line_text, spans = fill(line_tpl.replace("{env}", env),
                                {"secret": secret, "_secret_kind": tpl["secret_kind"]})
        for sp in spans:
            sp["start"] += len(pre_text)
            sp["end"] += len(pre_text)
        files.append({
            "record_id": f"C{idx:04d}",
            "subject_id": subject_id,
            "split": split,
            "path": f"{noun}_{idx:04d}.{tpl['ext']}",
            "language": tpl["language"],
            "text": pre_text + line_text + post_text,
            "spans": spans,
            "repeats": rng.choice(CODE_REPEATS) if spans and split == "train" else 1,
        })
    return files


def make_canaries(cfg: GenerateConfig, rng: random.Random) -> list[dict]:
    labels = list(T.CANARY_LABELS)
    rng.shuffle(labels)
    plan = [(k, "train") for k in CANARY_REPEATS for _ in range(cfg.canaries_per_repeat)]
    plan += [(0, "holdout")] * cfg.holdout_canaries
    out = []
    for idx, (k, split) in enumerate(plan):
        label = labels[idx % len(labels)] + (f"-{idx // len(labels)}" if idx >= len(labels) else "")
        secret = "".join(rng.choices(string.digits, k=9))
        text, spans = fill(T.CANARY_TEMPLATE,
                           {"label": label, "secret": secret, "_secret_kind": "canary"})
        out.append({"canary_id": f"K{idx:03d}", "split": split, "repeats": k,
                    "text": text, "spans": spans, "secret": secret})
    return out


def generate(out: Path | str, cfg: GenerateConfig | None = None) -> dict:
    """Generate the corpora into ``out`` and return the manifest (also written there)."""
    cfg = cfg or GenerateConfig()
    if cfg.subjects < 1:
        raise InvalidInputError(f"--subjects must be at least 1, got {cfg.subjects}")
    if not 1 <= cfg.min_records <= cfg.max_records or cfg.min_records < 3:
        raise InvalidInputError("records per subject need 3 <= min_records <= max_records")
    fake = Faker("en_US")
    fake.seed_instance(cfg.seed)
    rng = random.Random(cfg.seed)
    subjects = make_subjects(cfg, fake, rng)
    tables = {
        "subjects.jsonl": subjects,
        "people.jsonl": make_people(cfg, subjects, rng),
        "code.jsonl": make_code(cfg, subjects, rng),
        "canaries.jsonl": make_canaries(cfg, rng),
    }
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    digests = {}
    for name, rows in tables.items():
        data = "".join(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n" for r in rows)
        (out / name).write_bytes(data.encode("utf-8"))
        digests[name] = hashlib.sha256(data.encode("utf-8")).hexdigest()
    import faker as _faker

    manifest = {
        "generator_version": GENERATOR_VERSION,
        "faker_version": _faker.VERSION,
        "config": cfg.__dict__,
        "counts": {k: len(v) for k, v in tables.items()},
        "sha256": digests,
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return manifest
