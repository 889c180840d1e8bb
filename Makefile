# minitube: `make run` to serve, `make test` to test. Needs only Python 3.11+.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.DEFAULT_GOAL := help
.PHONY: help install run test test-fast browser lint bench bench-stream bench-viewers clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

$(STAMP): setup.cfg pyproject.toml
	$(PYTHON) -c 'import sys; sys.exit("minitube needs Python 3.11+") if sys.version_info < (3, 11) else None'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,test]'
	touch $@

install: $(STAMP) ## make the virtualenv and install minitube with its test tools

run: $(STAMP) ## serve on http://127.0.0.1:8080 (or $PORT) (embedded PostgreSQL/Redis unless DATABASE_URL/REDIS_URL)
	$(BIN)/python -m minitube dev

browser: ## install Debian's Chromium for the browser tests (as root, when missing)
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
		|| echo "chromium not installed: browser tests will be skipped"; }

test: $(STAMP) browser ## run the whole test suite against real PostgreSQL and Redis
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-fast: $(STAMP) ## the suite without the browser and multi-process tests
	$(BIN)/python -m pytest -m 'not browser and not multiprocess' $(PYTEST_ARGS)

bench: bench-stream bench-viewers ## all benchmarks

bench-stream: $(STAMP) ## streaming vs nginx, and upload memory
	$(BIN)/python -m bench.stream

bench-viewers: $(STAMP) ## thousands of viewer WebSockets on one process
	$(BIN)/python -m bench.viewers

clean: ## remove the virtualenv and local dev data
	rm -rf $(VENV) var .pytest_cache test-output
