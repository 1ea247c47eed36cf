#!/bin/sh
# Install what the Celery deployment run needs, only when it is missing: the `celery` extra
# (Airflow's Celery provider and the celery version it works with) and, as root, Debian's
# redis-server. The package's system-wide service is kept from starting (policy-rc.d): the
# suite starts its own Redis on 127.0.0.1. Usage: sh tests/deployment/bootstrap_celery.sh [python]
set -eu
PYTHON="${1:-python}"
cd "$(dirname "$0")/../.."

if ! "$PYTHON" -c 'import celery, airflow.providers.celery' 2>/dev/null; then
  echo "Installing the celery extra (pip install -e '.[celery]')..."
  "$PYTHON" -m pip install -q --disable-pip-version-check -e '.[celery]'
fi

if ! command -v redis-server >/dev/null 2>&1; then
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "redis-server is not installed (apt-get install redis-server as root); the Celery run is skipped." >&2
    exit 0
  fi
  echo "Installing redis-server (apt-get)..."
  sh demo/apt_install.sh redis-server
fi
