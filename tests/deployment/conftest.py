"""The deployment suite's PostgreSQL, and the Celery variant skipped unless ``-m`` asks for it
by name.

It needs Redis, the ``celery`` extra and about as long again as the LocalExecutor run, so
the default ``pytest`` (and CI, and ``make test-deployment``) leaves it out;
``make test-deployment-celery`` runs it with ``-m "deployment and celery"``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from devtools.postgres import Postgres, server_binaries


@pytest.fixture
def postgres() -> Iterator[Postgres]:
    """A throw-away PostgreSQL cluster: the deployment's metadata database."""
    bin_dir = server_binaries()
    assert bin_dir is not None
    server = Postgres(bin_dir).start()
    yield server
    server.stop()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if "celery" in str(config.getoption("markexpr") or ""):
        return
    skip = pytest.mark.skip(reason="the Celery deployment runs with make test-deployment-celery")
    for item in items:
        if item.get_closest_marker("celery"):
            item.add_marker(skip)
