# Two entry points do all set-up on a fresh Debian/Ubuntu machine: `make demo` and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
ARGS ?=
PYTEST_ARGS ?=

.PHONY: demo test lint bootstrap bench serve worker clean

bootstrap:
	@bash scripts/bootstrap.sh $(VENV)

demo: bootstrap
	$(PY) manage.py demo $(ARGS)

test: bootstrap lint
	$(PY) -m pytest $(PYTEST_ARGS)

lint: bootstrap
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports

bench:
	@BENCH=1 bash scripts/bootstrap.sh $(VENV)
	$(PY) -m bench.pipeline
	$(PY) -m bench.separate
	$(PY) -m bench.ledger
	$(PY) -m bench.identify
	$(PY) -m bench.mixtures
	$(PY) -m bench.landmark_scale
	$(PY) -m bench.stem_find
	$(PY) -m bench.renditions

serve: bootstrap
	$(PY) manage.py migrate --noinput && $(PY) manage.py runserver 127.0.0.1:8000

worker: bootstrap
	$(PY) manage.py rundramatiq

clean:
	rm -rf var/ test-artifacts/ .pytest_cache
