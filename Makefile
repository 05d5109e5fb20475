# `make demo` and `make test` each create .venv when it is missing, install torch first with pip
# (pinned; set TORCH_SPEC / TORCH_PIP_ARGS for another build, e.g. a CUDA wheel index), then the
# suite with uv (it resolves the same versions as pip and downloads in parallel: 14 s here
# against pip's 2.5 to 4 minutes; torch, already installed, is kept). Where uv cannot be had,
# pip installs the suite instead.
# Bytecode: these machines set PYTHONDONTWRITEBYTECODE, so nothing would be cached at import
# and every test process would compile torch and transformers again. make's commands run
# without it: a module is compiled once, when first imported, and only the modules imported
# are (compiling the whole environment up front took a minute of the install here).
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
unexport PYTHONDONTWRITEBYTECODE

.PHONY: install demo test lint bench clean

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --no-compile "$(TORCH_SPEC)" $(TORCH_PIP_ARGS)
	{ $(PY) -m pip install -q --no-compile "uv>=0.5" && \
	  $(VENV)/bin/uv pip install -q --python $(PY) -e ".[$(EXTRAS)]"; } || \
	  $(PY) -m pip install -q --no-compile -e ".[$(EXTRAS)]"
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
