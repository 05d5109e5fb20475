"""The public Python API: `from forget import ...`, cheap to import, typed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import forget

ROOT = Path(__file__).resolve().parents[1]


def test_every_exported_name_resolves():
    assert forget.__all__ == sorted(forget._EXPORTS)
    for name in forget.__all__:
        assert getattr(forget, name) is not None, name
    assert forget.NPOConfig().max_steps > 0
    assert forget.resolve_method(forget.NPOConfig(max_steps=3)) == ("npo", {"max_steps": 3})
    assert issubclass(forget.RetrainConfig, forget.MethodConfig)
    assert forget.load_corpus is forget.corpus.load_corpus


def test_an_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        forget.nope  # noqa: B018


def test_import_forget_is_fast_and_imports_no_heavy_library():
    code = ("import sys, time; t = time.perf_counter(); import forget; "
            "dt = time.perf_counter() - t; import json; print(json.dumps({'s': dt, 'mods': "
            "[m for m in ('torch', 'transformers', 'datasets', 'pyarrow', 'sqlalchemy', "
            "'audits') if m in sys.modules]}))")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT, check=True)
    out = json.loads(res.stdout)
    assert out["mods"] == [] and out["s"] < 0.5, out
    assert res.stderr == ""


def test_py_typed_ships_with_the_package():
    assert (ROOT / "forget" / "py.typed").is_file()
    assert '"py.typed"' in (ROOT / "pyproject.toml").read_text()
