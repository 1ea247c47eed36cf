#!/bin/sh
# Install what `make test` needs, only when it is missing, so a second run costs nothing:
# what `make demo` installs (the package, aiosmtpd, Dovecot), the test extras (pytest, ruff,
# mypy, psycopg2, playwright), and as root Debian's Chromium (browser tests) and PostgreSQL
# (deployment suite). Usage: sh tests/bootstrap.sh [python]
set -eu
PYTHON="${1:-python}"
cd "$(dirname "$0")/.."

sh demo/bootstrap.sh "$PYTHON"

if ! "$PYTHON" -c 'import pytest, pytest_timeout, xdist, ruff, mypy, psycopg2, asyncpg, playwright' 2>/dev/null; then
  echo "Installing the test extras (pip install -e '.[test,bench,ui]')..."
  "$PYTHON" -m pip install -q --disable-pip-version-check -e '.[test,bench,ui]'
fi

missing=""
command -v chromium >/dev/null 2>&1 || missing="$missing chromium fonts-dejavu-core"
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$missing postgresql"
if [ -n "$missing" ]; then
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "Not installed:$missing (apt-get as root); the tests that need them are skipped." >&2
    exit 0
  fi
  echo "Installing$missing (apt-get)..."
  # shellcheck disable=SC2086
  sh demo/apt_install.sh $missing
fi
