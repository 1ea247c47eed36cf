PYTHON ?= python

.PHONY: demo test lint bench

# The reference integration end to end on embedded defaults.
demo:
	$(PYTHON) -m demo

# Lint, types, then every test (real Dovecot, aiosmtpd and Airflow started by the suite).
test: lint
	$(PYTHON) -m pytest -q -p no:cacheprovider

lint:
	$(PYTHON) -m ruff check airflow_provider_mail tests dags_examples benchmarks
	$(PYTHON) -m mypy

bench:
	$(PYTHON) -m benchmarks.receive
	$(PYTHON) -m benchmarks.send
