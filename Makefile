# Usher's make targets: the same commands CI runs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test install lint migrate bench demo-rollout clean

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

install: $(STAMP)  ## create the virtualenv and install the pinned requirements

migrate: install  ## apply migrations
	$(BIN)/python manage.py migrate --no-input

# The demo's world, traffic and canary knobs (docs/releases.md, "The demo's canary"): 2,000 simulated
# viewers at 4 visits/s, so a healthy candidate's canary (5 → 25 → 50 → 100 %) completes on its own
# (measured: 23 minutes from approval) and a harmful one (random recommendations, 0.04 worse online
# in this world) is rolled back on its own (measured: 24 minutes, at the planned horizon; docs/releases.md).
# Production keeps the defaults of releases/conf.py.
# Any of these set in the environment (or on make's command line) wins.
run: export USHER_SIMULATOR_VIEWERS ?= 2000
run: export SIMULATOR_RATE ?= 4
run: export CANARY_INTERVAL_SECONDS ?= 60
run: export CANARY_MIN_TRIALS ?= 50
run: export CANARY_MIN_DETECTABLE_DEGRADATION ?= 0.06
run: export CANARY_QUALITY_WINDOW_MINUTES ?= 2
run: migrate  ## run Usher: portal (gunicorn), Celery worker, beat and the simulator; Ctrl-C stops all
	$(BIN)/python manage.py collectstatic --no-input -v0
	$(BIN)/python manage.py seed_demo_users
	$(BIN)/python manage.py bootstrap
	$(BIN)/honcho -f Procfile start

test: install  ## run the test suite (add DATABASE_URL/REDIS_URL to include the PostgreSQL/Redis/worker tests)
	$(BIN)/python -m pytest

lint: install  ## ruff and the migrations check
	$(BIN)/ruff check .
	$(BIN)/python manage.py makemigrations --check --dry-run

bench: install  ## run the benchmarks (figures go into docs/benchmarks.md by hand)
	for f in benchmarks/[!_]*.py; do [ $$f = benchmarks/demo_rollout.py ] || $(BIN)/python $$f || exit 1; done

# Issue #15's everyday path by clicks in a headless chromium, against a `make run` that is up:
# make demo-rollout DEMO_ARGS="--url http://127.0.0.1:8000 --passwords-from run.log" (docs/benchmarks.md).
demo-rollout: install  ## a new algorithm to a completed canary by portal clicks alone, timed (needs `make run` up)
	$(BIN)/python benchmarks/demo_rollout.py $(DEMO_ARGS)

clean:  ## remove the embedded database, broker and artifacts under var/
	rm -rf var/
