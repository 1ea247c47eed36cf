"""Skip the Celery variant of the deployment suite unless ``-m`` asks for it by name.

It needs Redis, the ``celery`` extra and about as long again as the LocalExecutor run, so
the default ``pytest`` (and CI, and ``make test-deployment``) leaves it out;
``make test-deployment-celery`` runs it with ``-m "deployment and celery"``.
"""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if "celery" in str(config.getoption("markexpr") or ""):
        return
    skip = pytest.mark.skip(reason="the Celery deployment runs with make test-deployment-celery")
    for item in items:
        if item.get_closest_marker("celery"):
            item.add_marker(skip)
