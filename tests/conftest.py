"""Shared test set-up: a private Airflow home, real Dovecot and a throw-away certificate.

Airflow reads its configuration when first imported, so the environment is set here,
before any test module imports Airflow or the provider.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
# Child processes started by tests (crash tests) inherit the parent's Airflow home. Each
# pytest-xdist worker (``make test`` runs several) needs a home and SQLite database of its
# own, though it inherits the environment of the controller that loaded this file first.
_WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")
_INHERITED_HOME = os.environ.get("MAIL_TESTS_AIRFLOW_HOME")
if os.environ.get("MAIL_TESTS_AIRFLOW_HOME_WORKER", "") != _WORKER:
    _INHERITED_HOME = None
_AIRFLOW_HOME = Path(_INHERITED_HOME or tempfile.mkdtemp(prefix="mail-provider-airflow-"))
os.environ.update(
    {
        "MAIL_TESTS_AIRFLOW_HOME": str(_AIRFLOW_HOME),
        "MAIL_TESTS_AIRFLOW_HOME_WORKER": _WORKER,
        "AIRFLOW_HOME": str(_AIRFLOW_HOME),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{_AIRFLOW_HOME}/airflow.db",
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        # One key for every process of the run, so Variables written by a child process
        # (crash tests) read back in this one.
        "AIRFLOW__CORE__FERNET_KEY": os.environ.get("AIRFLOW__CORE__FERNET_KEY")
        or "o7sZrV9bKJmXQ3tKcUcE3mG9yRj1z0tQ2pGq5v2mYxA=",
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO),
        "AIRFLOW__CORE__TEST_CONNECTION": "Enabled",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
    }
)

import pytest  # noqa: E402

from devtools.certs import Certificate, make_certificate  # noqa: E402
from devtools.connections import USERS, ConnFactory, connection_variable  # noqa: E402
from devtools.dovecot import Dovecot  # noqa: E402

pytest_plugins = ["tests.fixtures_smtp", "tests.oauth_fixtures"]


@pytest.fixture(scope="session")
def workdir() -> Iterator[Path]:
    """A session temp dir that unprivileged Dovecot processes can traverse."""
    path = Path(tempfile.mkdtemp(prefix="mail-provider-tests-"))
    path.chmod(0o755)
    yield path


@pytest.fixture(scope="session")
def certificate(workdir: Path) -> Certificate:
    """The servers' self-signed certificate, valid for ``localhost`` only."""
    return make_certificate(workdir / "certs")


@pytest.fixture(scope="session")
def other_certificate(workdir: Path) -> Certificate:
    """A second self-signed certificate, which the servers do not use."""
    return make_certificate(workdir / "other-certs", name="other")


@pytest.fixture(scope="session")
def dovecot(workdir: Path, certificate: Certificate) -> Iterator[Dovecot]:
    """Dovecot with TLS: plain+STARTTLS ports and implicit-TLS ports for IMAP and POP3."""
    server = Dovecot(workdir / "dovecot", certificate, users=dict(USERS)).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def dovecot_no_tls(workdir: Path) -> Iterator[Dovecot]:
    """Dovecot without TLS at all: its plain ports do not offer STARTTLS."""
    server = Dovecot(workdir / "dovecot-no-tls", None, users=dict(USERS)).start()
    yield server
    server.stop()


@pytest.fixture
def mail_connection(monkeypatch: pytest.MonkeyPatch) -> ConnFactory:
    """Define an Airflow connection through an ``AIRFLOW_CONN_*`` variable; returns its id."""

    def define(
        conn_id: str,
        conn_type: str,
        *,
        host: str = "localhost",
        port: int | None = None,
        login: str | None = None,
        password: str | None = None,
        **extra: Any,
    ) -> str:
        monkeypatch.setenv(
            *connection_variable(
                conn_id, conn_type, host=host, port=port, login=login, password=password, **extra
            )
        )
        return conn_id

    return define


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """Airflow's SQLite metadata database, migrated once per test session."""
    subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"],
        check=True,
        capture_output=True,
        env=os.environ.copy(),
    )
    return _AIRFLOW_HOME


# Files that take minutes. ``make test`` runs pytest-xdist workers, each a file at a time:
# the three longest start at once, the quick unit files go next, then the other long ones,
# so no worker is left with a long file at the end while the others idle.
_LONG_FILES_FIRST = (
    "tests/deployment/test_mailbox_actions_keep_running.py",
    "tests/deployment/test_reference_keeps_running.py",
    "tests/test_after_receive_sensor.py",
)
_LONG_FILES_NEXT = (
    "tests/test_demo.py",
    "tests/browser/test_newcomer_path.py",
    "tests/test_receive_crash.py",
    "tests/faults/test_random_kills.py",
    "tests/test_asset_after_receive.py",
    "tests/test_examples_end_to_end.py",
)


def _file_rank(item: pytest.Item) -> int:
    path = item.nodeid.split("::")[0]
    if path in _LONG_FILES_FIRST:
        return _LONG_FILES_FIRST.index(path)
    if path.startswith("tests/unit/"):
        return len(_LONG_FILES_FIRST)
    if path in _LONG_FILES_NEXT:
        return len(_LONG_FILES_FIRST) + 1
    return len(_LONG_FILES_FIRST) + 2


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=_file_rank)  # stable: within a rank, collection order

