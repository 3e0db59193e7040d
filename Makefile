# The README's two commands are `make demo` and `make test`; .ci/run calls `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# PostgreSQL for the backend tests (trust auth on 127.0.0.1 on our machines).
CROSSBEAT_TEST_POSTGRES_URL ?= postgresql://postgres@127.0.0.1:5432/postgres
export CROSSBEAT_TEST_POSTGRES_URL

.PHONY: demo test lint bench bench-reads bench-reads-pg bench-reads-toronto bench-tiles bench-web install clean

$(BIN)/crossbeat: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

install: $(BIN)/crossbeat

# Port 8000 taken? `make demo PORT=8001` (or CROSSBEAT_PORT=8001, which `crossbeat demo` reads).
PORT ?=
demo: install  ## build the demo region into ./demo-data and serve it on http://127.0.0.1:8000
	$(BIN)/crossbeat demo $(if $(PORT),--port $(PORT))

lint: install
	$(BIN)/ruff format --check crossbeat tests benchmarks
	$(BIN)/ruff check crossbeat tests benchmarks
	$(BIN)/mypy  # the package, configured in pyproject.toml [tool.mypy]

# Test files are spread over worker processes (pytest-xdist; a file's tests stay together so
# its module fixtures are built once), in collection order: the slowest files first
# (tests/conftest.py SLOW_FILES). xdist would otherwise hand out the files with the most
# tests first, and the long files of one or two tests last. WORKERS=1 runs them in one process.
WORKERS ?= 3
test: install lint  ## set up and run the whole test suite (SQLite and PostgreSQL) and the doctests
	$(BIN)/python -m pytest -p no:cacheprovider $(if $(filter-out 1,$(WORKERS)),-n $(WORKERS) --dist loadfile --no-loadscope-reorder) $(PYTEST_ARGS)

bench: install  ## ingest benchmark: prints figures and the machine
	$(BIN)/python benchmarks/run.py

bench-reads: install  ## read benchmark: governed reads beside bare SQL (ROWS=1000000 DB=sqlite)
	$(BIN)/python benchmarks/reads.py --rows $(or $(ROWS),1000000) --db $(or $(DB),sqlite)

bench-reads-pg: install  ## read benchmark at 10 M incidents on PostgreSQL (COPY; ROWS=, DB=)
	$(BIN)/python benchmarks/reads.py --rows $(or $(ROWS),10000000) --db $(or $(DB),$(CROSSBEAT_TEST_POSTGRES_URL))

bench-reads-toronto: install  ## Toronto's analyst on ../shared/data/toronto-mci, beside bare SQL
	$(BIN)/python benchmarks/toronto_reads.py

bench-tiles: install  ## vector tile benchmark: z10/z15 tiles beside bare SQL (ROWS=1000000 DB=sqlite)
	$(BIN)/python benchmarks/tiles.py --rows $(or $(ROWS),1000000) --db $(or $(DB),sqlite)

bench-web: install  ## web benchmark: the analyst map over a large store, in chromium (ROWS=1000000)
	$(BIN)/python benchmarks/web.py --rows $(or $(ROWS),1000000)

clean:
	rm -rf $(VENV) demo-data *.egg-info
