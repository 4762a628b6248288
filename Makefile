# One entry point for every chore. Each target creates .venv when needed.
PYTHON ?= python3
VENV   ?= .venv
PORT   ?= 8420
HOST   ?= 127.0.0.1
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

# The embedding model ships inside a package: never reach for a model hub.
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

# The console's browser tests drive Debian's chromium (never a browser downloaded by Playwright).
CHROMIUM ?= /usr/bin/chromium
SUDO     := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: install serve test lint format bench clean chromium

install: $(STAMP)

# Re-installs only when the project's dependency list changes.
# torch comes first and pinned: any other spec pulls a CUDA build of several GB.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e '.[local,dev]'
	touch $(STAMP)

serve: $(STAMP)
	$(BIN)/ctxbase serve --host $(HOST) --port $(PORT)

# The suite runs on TEST_WORKERS processes (pytest-xdist), each with its own embedded
# PostgreSQL; TEST_WORKERS=0 runs it in this one process.
TEST_WORKERS ?= 3

test: $(STAMP) chromium
	$(BIN)/python -m pytest -n $(TEST_WORKERS) $(PYTEST_ARGS)

# Installs chromium with apt-get when it is missing (CI runs as root on a clean machine).
chromium:
	@test -x $(CHROMIUM) || { \
		echo "Installing chromium for the console's browser tests (apt-get)"; \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium; }

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff format src tests benchmarks
	$(BIN)/ruff check --fix src tests benchmarks

bench: $(STAMP)
	@for f in benchmarks/[!_]*.py; do m=$$(basename $$f .py); echo "== $$m"; $(BIN)/python -m benchmarks.$$m || exit 1; done

clean:
	rm -rf $(VENV) build dist .pytest_cache .mypy_cache .ruff_cache
