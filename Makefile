PYTHON ?= python

.PHONY: demo demo-ui test lint bench

# The reference integration end to end on local, throw-away mail servers and Airflow.
# Installs what is missing first (the package, aiosmtpd, Dovecot via apt as root).
demo:
	sh demo/bootstrap.sh $(PYTHON)
	$(PYTHON) -m demo

# The same servers, connections and sample mail behind a running Airflow UI, until Ctrl-C.
demo-ui:
	sh demo/bootstrap.sh $(PYTHON)
	$(PYTHON) -m demo --ui

# Lint, types, then every test (real Dovecot, aiosmtpd and Airflow started by the suite).
test: lint
	$(PYTHON) -m pytest -q -p no:cacheprovider

lint:
	$(PYTHON) -m ruff check airflow_provider_mail tests dags_examples benchmarks demo
	$(PYTHON) -m mypy

bench:
	$(PYTHON) -m benchmarks.receive
	$(PYTHON) -m benchmarks.send
