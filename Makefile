# `make demo` and `make test` each create .venv when it is missing, install torch first with pip
# (pinned; set TORCH_SPEC / TORCH_PIP_ARGS for another build, e.g. a CUDA wheel index), then the
# suite with uv (it resolves the same versions as pip and downloads in parallel: 14 s here
# against pip's 2.5 to 4 minutes; torch, already installed, is kept). Where uv cannot be had,
# pip installs the suite instead.
# Bytecode: pip compiles a package's modules one file at a time on one core (about a minute
# here); compileall -j 0 does it on every core (about half a minute). It must be done up front:
# with PYTHONDONTWRITEBYTECODE set (as on these machines) nothing is cached at import, and every
# process would compile torch again. A few third-party files that are not Python 3.11 (torch's
# py312 test helpers) do not compile; pip ignores those too, hence `|| true`.
PYTHON ?= python3.11
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
TORCH_PIP_ARGS ?=
EXTRAS ?= dev,postgres,diffusion
PY := $(VENV)/bin/python
DEMO_OUT ?= demo-out
PYTEST_ARGS ?= -n 3

# Offline Hugging Face and caches inside the project, never in the home directory.
export HF_HUB_OFFLINE := 1
export HF_DATASETS_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export HF_HOME := $(CURDIR)/.cache/hf
export MPLCONFIGDIR := $(CURDIR)/.cache/matplotlib
export PIP_CACHE_DIR ?= $(CURDIR)/.cache/pip
export UV_CACHE_DIR ?= $(CURDIR)/.cache/uv
export TOKENIZERS_PARALLELISM := false

.PHONY: install demo test lint bench clean

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --no-compile "$(TORCH_SPEC)" $(TORCH_PIP_ARGS)
	{ $(PY) -m pip install -q --no-compile "uv>=0.5" && \
	  $(VENV)/bin/uv pip install -q --python $(PY) -e ".[$(EXTRAS)]"; } || \
	  $(PY) -m pip install -q --no-compile -e ".[$(EXTRAS)]"
	$(PY) -m compileall -q -j 0 $(VENV)/lib > /dev/null || true  # see above
	touch $@

install: $(VENV)/.installed

demo: $(VENV)/.installed
	$(VENV)/bin/forget demo --out $(DEMO_OUT)

test: $(VENV)/.installed
	$(PY) -m pytest -q $(PYTEST_ARGS)

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check forget audits guardrails tests bench
	$(VENV)/bin/mypy    # the public API's modules (pyproject.toml [tool.mypy])

# Every benchmark script, then the summary table (bench/README.md). BENCH_ARGS reach each
# script (e.g. BENCH_ARGS= and `python bench/compare.py --scale 1` for the full comparison).
bench: $(VENV)/.installed
	@for f in bench/*.py; do [ $$f = bench/summarize.py ] && continue; \
	  echo "== $$f"; $(PY) $$f || exit 1; done
	$(PY) bench/summarize.py

clean:
	rm -rf $(VENV) .cache .pytest_cache $(DEMO_OUT)
