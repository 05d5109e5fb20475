"""Process environment the suite needs: offline Hugging Face, caches out of the home dir.

Called by the command line before anything imports transformers; library users who import
the packages directly may call :func:`configure_offline` themselves. Only defaults are set:
a variable the user already set wins.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

OFFLINE = {
    "HF_HUB_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "TOKENIZERS_PARALLELISM": "false",
    "TRANSFORMERS_NO_ADVISORY_WARNINGS": "1",
}


def configure_offline(cache_root: Path | str | None = None) -> None:
    """Set offline HF variables and point caches at ``cache_root`` (default: a temp dir)."""
    for key, value in OFFLINE.items():
        os.environ.setdefault(key, value)
    root = Path(cache_root) if cache_root else Path(tempfile.gettempdir()) / "forget-cache"
    for key, sub in (("HF_HOME", "hf"), ("MPLCONFIGDIR", "matplotlib"),
                     ("HF_DATASETS_CACHE", "hf/datasets")):
        if key not in os.environ:
            os.environ[key] = str(root / sub)
