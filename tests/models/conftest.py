"""Package fixtures of the model tests: the support-ticket fine-tune (``tickets.py``), built
once for ``test_finetune.py`` and ``test_rewind.py`` (one xdist unit: tests/conftest.py)."""

from __future__ import annotations

import pytest

from tests.models.tickets import PLANTED_ID, _finetune, _rows
from tests.models.tiny_bases import tiny_gpt2


@pytest.fixture(scope="package")
def parquet(tmp_path_factory):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path_factory.mktemp("tickets") / "tickets.parquet"
    pq.write_table(pa.Table.from_pylist(_rows()), path)
    return path


@pytest.fixture(scope="package")
def base_dir(tmp_path_factory):
    """A tiny GPT-2-architecture base; its tokenizer has no pad token (as GPT-2's)."""
    return tiny_gpt2([r["body"] for r in _rows()],
                     tmp_path_factory.mktemp("base") / "gpt2-tiny", pad=False)


@pytest.fixture(scope="package")
def registry(tmp_path_factory):
    return tmp_path_factory.mktemp("registry")


@pytest.fixture(scope="package")
def tuned(base_dir, parquet, registry, tmp_path_factory):
    """The fine-tune, its weights kept after every 5th epoch (for ``rewind``)."""
    return _finetune(base_dir, parquet, tmp_path_factory.mktemp("ft") / "model", registry,
                     checkpoint_every=5)


@pytest.fixture(scope="package")
def tuned_without(base_dir, parquet, registry, tmp_path_factory):
    return _finetune(base_dir, parquet, tmp_path_factory.mktemp("ft") / "without", registry,
                     exclude_record_ids=[PLANTED_ID])
