"""Quiet output: the suite's own progress and summaries only, unless ``--verbose``.

Without it, every model load and save would also print transformers' "Loading weights ...%|"
and "Writing model shards" bars, datasets' "Generating train split" and ``map`` bars, the
Trainer's bar and loss dicts, and library warnings, between the workflow's own lines.

The command line calls :func:`configure_output` once, from its ``--verbose`` / ``-v`` option
(or ``FORGET_VERBOSE=1``), before any command runs. It uses the libraries' own switches:
for a library already imported, its functions (``transformers.utils.logging.
disable_progress_bar``, ``datasets.disable_progress_bars``, ``huggingface_hub.utils.
disable_progress_bars``, log levels); for one not yet imported, the environment variables it
reads on import (``HF_HUB_DISABLE_PROGRESS_BARS``, ``HF_DATASETS_DISABLE_PROGRESS_BARS``,
``TRANSFORMERS_VERBOSITY``, ``DATASETS_VERBOSITY``), so the command line does not pay for
importing them up front. A variable the user already set wins. Nothing redirects stderr.
Library users who want the same quiet call ``forget.configure_output()`` themselves.
"""

from __future__ import annotations

import logging
import os
import sys
import warnings

# Set only when quiet, and only where the user has not set them.
QUIET_ENV = {
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    "HF_DATASETS_DISABLE_PROGRESS_BARS": "1",
    "TRANSFORMERS_VERBOSITY": "error",
    "DATASETS_VERBOSITY": "error",
}
# Loggers of the libraries the suite drives; quiet keeps their errors only.
LIBRARY_LOGGERS = ("transformers", "datasets", "huggingface_hub", "accelerate", "peft", "trl",
                   "opacus", "torch", "diffusers", "lm_eval", "lm-eval", "presidio-analyzer",
                   "presidio-anonymizer", "detect_secrets", "filelock", "fsspec", "urllib3")
# Warnings raised from these packages' modules are hidden when quiet.
_LIBRARY_MODULES = r"(transformers|datasets|huggingface_hub|accelerate|peft|trl|opacus|torch|" \
                   r"diffusers|lm_eval|presidio_analyzer|presidio_anonymizer|detect_secrets|" \
                   r"sklearn|scipy|pyarrow|pandas|numpy|tqdm)(\..*)?"

_verbose = True  # nothing configured: the libraries' defaults


def is_verbose() -> bool:
    """Whether library output is on (the default until :func:`configure_output` is called)."""
    return _verbose


def configure_output(verbose: bool = False) -> None:
    """Silence library progress bars, log lines and warnings (``verbose=False``), or give
    the libraries back their defaults (``verbose=True``). Safe to call more than once."""
    global _verbose
    _verbose = verbose
    if not verbose:
        for key, value in QUIET_ENV.items():
            os.environ.setdefault(key, value)
    level = logging.NOTSET if verbose else logging.ERROR
    for name in LIBRARY_LOGGERS:
        logging.getLogger(name).setLevel(level)
    if verbose:
        warnings.filterwarnings("default", module=_LIBRARY_MODULES)
    else:
        warnings.filterwarnings("ignore", module=_LIBRARY_MODULES)
    _switch_loaded(verbose)


def _switch_loaded(verbose: bool) -> None:
    """The libraries' own switches, for the ones already imported (importing one costs ~1 s)."""
    if "huggingface_hub" in sys.modules:
        from huggingface_hub import utils as hub_utils

        if verbose:
            hub_utils.enable_progress_bars()
        else:
            hub_utils.disable_progress_bars()
    if "transformers" in sys.modules:
        from transformers.utils import logging as tf_logging

        if verbose:
            tf_logging.enable_progress_bar()
            tf_logging.set_verbosity_warning()  # transformers' default
        else:
            tf_logging.disable_progress_bar()
            tf_logging.set_verbosity_error()
    if "datasets" in sys.modules:
        import datasets

        if verbose:
            datasets.enable_progress_bars()
            datasets.logging.set_verbosity_warning()
        else:
            datasets.disable_progress_bars()
            datasets.logging.set_verbosity_error()
