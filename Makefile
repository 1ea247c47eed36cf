PYTHON ?= python

.PHONY: demo demo-ui test test-deployment test-deployment-celery test-matrix lint bench bootstrap-test

# The reference integration end to end on local, throw-away mail servers and Airflow.
# Installs what is missing first (the package, aiosmtpd, Dovecot via apt as root).
demo:
	sh demo/bootstrap.sh $(PYTHON)
	$(PYTHON) -m demo

# The same servers, connections and sample mail behind a running Airflow UI, until Ctrl-C.
demo-ui:
	sh demo/bootstrap.sh $(PYTHON)
	$(PYTHON) -m demo --ui

# Installs what is missing (test extras; as root Dovecot, Chromium, PostgreSQL), then lint,
# types and every test: real Dovecot, aiosmtpd and Airflow started by the suite, and the
# deployment suite (PostgreSQL, scheduler, two triggerers, LocalExecutor; about 5 minutes).
# Three pytest-xdist workers, a test file each at a time, in the order tests/conftest.py
# gives (longest files first): most tests wait on servers and Airflow processes, so three
# share two cores well. TEST_WORKERS=0 runs in one process.
TEST_WORKERS ?= 3
test: bootstrap-test lint
	$(PYTHON) -m pytest -q -p no:cacheprovider -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder \
	  --durations=30

# Only the real deployment (tests/deployment), printing sent/received/duplicates/lost.
test-deployment: bootstrap-test
	$(PYTHON) -m pytest -q -p no:cacheprovider -s -m deployment tests/deployment

# The same deployment on the CeleryExecutor: Redis and two Celery workers, one killed -9
# mid-hand-over. Installs the celery extra and redis-server when missing. Not part of `test`.
test-deployment-celery: bootstrap-test
	sh tests/deployment/bootstrap_celery.sh $(PYTHON)
	$(PYTHON) -m pytest -q -p no:cacheprovider -s -m "deployment and celery" tests/deployment

# Every Airflow 3 minor in its own venv (.matrix/): unit, real-server and dag.test() tests.
# MATRIX="3.0.6:3.10" limits it to some entries (Airflow version:Python version).
test-matrix:
	bash .ci/matrix.sh

bootstrap-test:
	sh tests/bootstrap.sh $(PYTHON)

lint:
	$(PYTHON) -m ruff check airflow_provider_mail devtools tests dags_examples benchmarks demo
	$(PYTHON) -m mypy

bench:
	$(PYTHON) -m benchmarks.receive
	$(PYTHON) -m benchmarks.send
