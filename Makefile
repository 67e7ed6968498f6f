# The two commands of the quick start: `make run` and `make test`.
# Each sets itself up on a fresh machine that has python3.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The PostgreSQL leg of `make test`; pytest-django creates and drops test_<name>.
TEST_POSTGRES_URL ?= postgres://postgres@127.0.0.1:5432/fabpool

.PHONY: run test lint test-sqlite test-postgres test-browser install lock clean

$(BIN)/.installed: pyproject.toml constraints.txt
	@$(PYTHON) -c 'import ensurepip' 2>/dev/null || { \
		echo "$(PYTHON) cannot create virtualenvs: install python3-venv (apt-get install python3-venv)." >&2; \
		exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet --constraint constraints.txt -e ".[dev]"
	touch $@

# Front-end packages (served as static files, never from a CDN) and ical.js for the feed tests.
node_modules/.installed: package.json package-lock.json
	@command -v npm >/dev/null || { echo "npm is needed for the front-end packages (apt-get install npm)." >&2; exit 1; }
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

install: $(BIN)/.installed node_modules/.installed

run: install
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py seed_demo
	$(BIN)/python manage.py runserver 127.0.0.1:8000

test: lint test-sqlite test-postgres test-browser

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python manage.py makemigrations --check --dry-run
	$(BIN)/python manage.py check --fail-level WARNING
	$(BIN)/python manage.py spectacular --validate --fail-on-warn --file /dev/null

# The browser tests (marked `browser`) run once, in test-browser, not in each database leg.
test-sqlite: install
	DATABASE_URL= $(BIN)/pytest -m "not browser"

# Runs when PostgreSQL answers; with CI=true it must answer.
test-postgres: install
	@if $(BIN)/python scripts/db_reachable.py "$(TEST_POSTGRES_URL)"; then \
		DATABASE_URL="$(TEST_POSTGRES_URL)" $(BIN)/pytest -m "not browser"; \
	elif [ "$$CI" = "true" ]; then \
		echo "PostgreSQL at $(TEST_POSTGRES_URL) is unreachable, and CI=true requires it." >&2; exit 1; \
	else \
		echo "PostgreSQL unreachable at $(TEST_POSTGRES_URL): PostgreSQL leg skipped."; \
	fi

# Playwright drives Debian's Chromium through the pages, on SQLite; screenshots go to
# var/screenshots/. Skipped without /usr/bin/chromium, except with CI=true, where it fails.
test-browser: install
	@if [ -x /usr/bin/chromium ]; then \
		DATABASE_URL= $(BIN)/pytest -m browser tests/browser; \
	elif [ "$$CI" = "true" ]; then \
		echo "/usr/bin/chromium is missing, and CI=true requires the browser tests (apt-get install chromium)." >&2; exit 1; \
	else \
		echo "/usr/bin/chromium is missing: browser tests skipped (apt-get install chromium)."; \
	fi

# Re-resolve the newest versions pyproject.toml allows, and pin them.
lock:
	rm -rf $(VENV).lock && $(PYTHON) -m venv $(VENV).lock
	$(VENV).lock/bin/pip install --quiet -e ".[dev]"
	{ echo "# Exact versions the suite last passed with; pyproject.toml keeps the ranges."; \
	  echo "# Refresh with: make lock"; \
	  $(VENV).lock/bin/pip freeze --exclude-editable | grep -v '^-e'; } > constraints.txt
	rm -rf $(VENV).lock

clean:
	rm -rf $(VENV) node_modules var/test.sqlite3*
