"""Sensitive-span detection in code: a table of positive and negative cases, and the corpus."""

from __future__ import annotations

import pytest

from forget.core.sensitive import find_sensitive_spans

POSITIVE = [
    ('API_KEY = "sk_live_TbAP7V2hAbqxvxXl"\n', "app.py", "sk_live_TbAP7V2hAbqxvxXl"),
    ("  password: XEjKzM4oaB*14\n", "db.yaml", "XEjKzM4oaB*14"),
    ("SECRET_KEY=4aad30f5fb77e4a7ce8867a9\n", "app.env", "4aad30f5fb77e4a7ce8867a9"),
    ('  "token": "ghp_v9MzXeJG1KEGWvIR9R7y",\n', "hook.json", "ghp_v9MzXeJG1KEGWvIR9R7y"),
    ('DB_HOST = "10.178.102.56"\n', "db.py", "10.178.102.56"),
    ("owner: kelsey5615@example.com\n", "svc.yaml", "kelsey5615@example.com"),
    ("owner: laura31@mail.test\n", "svc.yaml", "laura31@mail.test"),
    ('aws = "AKIAIOSFODNN7EXAMPLE"\n', "cfg.py", "AKIAIOSFODNN7EXAMPLE"),
]
NEGATIVE = [
    ('API_KEY = os.environ["BOOKING_API_KEY"]\n', "app.py"),
    ('DB_HOST = os.environ.get("BOOKING_IP_ADDRESS", "localhost")\n', "db.py"),
    ("  password: ${ORDER_PASSWORD}\n", "db.yaml"),
    ("SECRET_KEY=\n", "app.env"),
    ("def fetch_session(item_id):\n    return requests.get(url)\n", "x.py"),
]


@pytest.mark.parametrize("text,path,secret", POSITIVE)
def test_finds_secret(text, path, secret):
    spans = find_sensitive_spans(text, path)
    start = text.index(secret)
    assert any(s["start"] <= start and start + len(secret) <= s["end"] for s in spans)


@pytest.mark.parametrize("text,path", NEGATIVE)
def test_ignores_non_secret(text, path):
    assert find_sensitive_spans(text, path) == []


def test_recall_on_the_code_corpus(corpus):
    found = total = 0
    for r in corpus.code:
        spans = find_sensitive_spans(r["text"], r["path"])
        for sp in r["spans"]:
            total += 1
            found += any(s["start"] <= sp["start"] and sp["end"] <= s["end"] for s in spans)
    assert total and found == total
