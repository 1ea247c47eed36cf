"""``[core] hostname_callable`` of the suite's triggerers: their component name, so that the
``job`` table says which triggerer runs a trigger (all components share one real host)."""

from __future__ import annotations

import os


def hostname() -> str:
    return os.environ["MAIL_DEPLOYMENT_COMPONENT"]
