# Two commands on a fresh machine: `make demo` and `make test`. Both build on `make install`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.codeindex-installed
SHARED_CORPUS := ../shared/corpus/make_corpus.sh
TEST_CORPUS   := .corpus/small
SCENARIOS ?= rebuild,noop,edit1
CORPUS    ?= .corpus/small
BENCH_ARGS ?=

export HF_HUB_OFFLINE := 1
export ORT_DISABLE_TELEMETRY := 1

.PHONY: install demo test lint bench corpus clean

install: $(STAMP)

# torch==2.13.0 first: it is the CPU build; an unpinned torch would pull several GB of CUDA wheels.
# The default backend runs without torch; the dev install adds it (the [torch] extra) for the tests
# that check the ONNX vectors against sentence-transformers.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e '.[dev,torch]'
	touch $(STAMP)

demo: install
	$(BIN)/codeindex rebuild .
	$(BIN)/codeindex search "walk the tree honouring nested gitignore files" --root . -k 5
	$(BIN)/codeindex search "reciprocal rank fusion of vector and lexical results" --root . -k 5

# The small pinned corpus of real code, when the shared corpus script is beside the checkout (CI has it).
corpus:
	@if [ -x $(SHARED_CORPUS) ] && [ ! -d $(TEST_CORPUS) ]; then $(SHARED_CORPUS) small $(TEST_CORPUS) >/dev/null; fi

test: install corpus
	@if [ -d $(TEST_CORPUS) ]; then export CODEINDEX_TEST_CORPUS=$(abspath $(TEST_CORPUS)); fi; \
	$(BIN)/python -m pytest -p no:cacheprovider $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check codeindex tests benchmarks plugins examples
	$(BIN)/mypy

bench: install
	$(BIN)/python -m benchmarks --scenarios $(SCENARIOS) --corpus $(CORPUS) $(BENCH_ARGS)

clean:
	rm -rf .codeindex .corpus .pytest_cache .mypy_cache .ruff_cache
