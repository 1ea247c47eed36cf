"""The start and end both deployment tests give their :class:`Deployment`."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Protocol

import pytest

from devtools.airflow_deployment import Deployment
from devtools.postgres import server_binaries

#: Fault injection and the triggerers' host names, on every component's ``PYTHONPATH``.
INJECT = Path(__file__).resolve().parent / "inject"
#: Every deployment test's ``pytestmark``: ``-m deployment``, its time limit, PostgreSQL.
MARKS = [
    pytest.mark.deployment,
    pytest.mark.timeout(900),
    pytest.mark.skipif(
        server_binaries() is None,
        reason="PostgreSQL's server is not installed (apt-get install postgresql; make test "
        "does it as root).",
    ),
]


class Collects(Protocol):
    """A test's record of the mail its deployment sent, brought up to date by ``collect``."""

    def collect(self) -> None: ...


def wait_until(what: str, check: Callable[[], bool], timeout: float, mail: Collects) -> None:
    """Collect ``mail`` and ask ``check`` every 0.5 s until it says yes, at most ``timeout``
    seconds; fails saying ``what`` it waited for."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        mail.collect()
        if check():
            return
        time.sleep(0.5)
    raise AssertionError(f"Timed out after {timeout:.0f} s waiting until {what}.")


def airflow_home(tmp_path: Path) -> Path:
    """A new ``AIRFLOW_HOME`` below ``tmp_path``, readable by every user (mode 0755)."""
    home = tmp_path / "airflow"
    home.mkdir()
    home.chmod(0o755)
    return home


def run(deployment: Deployment) -> Iterator[Deployment]:
    """Start ``deployment`` for a fixture to ``yield from``; afterwards stop it and print
    each component's log tail (pytest shows it when the test failed)."""
    deployment.start()
    try:
        yield deployment
    finally:
        deployment.stop()
        for name in deployment.processes:
            print(f"\n--- {name} (tail)\n{deployment.log_tail(name, 1500)}")
