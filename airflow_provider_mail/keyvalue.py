"""Small JSON values kept durably: Airflow Variables, or memory for tests and scripts.

This is the generic layer; the stores that give the values a meaning sit on top of it
(:mod:`airflow_provider_mail.storage` per task instance, :mod:`.handover.state` per
mailbox). Every key starts with ``mail_provider/`` (on Airflow 3.0 with ``:`` for every
``/``, see :func:`~airflow_provider_mail.compat.variable_key`).

Variables have no compare-and-set: :func:`update` makes a read-modify-write exclusive on
this host (a :func:`~airflow_provider_mail.locks.host_lock` per key), not across hosts.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from typing import Any, Protocol

from airflow_provider_mail.compat import variable_key
from airflow_provider_mail.locks import host_lock

PREFIX = "mail_provider"


class KeyValueStore(Protocol):
    """Where the provider keeps small JSON values durably."""

    def get(self, key: str) -> Any:
        """The value stored under ``key``, or ``None``."""

    def set(self, key: str, value: Any) -> None:
        """Store a JSON-serialisable ``value`` under ``key``."""


class VariableStore:
    """Airflow Variables: through the Task SDK inside tasks and triggers, else the database."""

    def get(self, key: str) -> Any:
        """The JSON value of the Variable ``key``, or ``None`` when it does not exist."""
        # The default is positional: the SDK calls it ``default``, the models ``default_var``.
        raw = _variables().get(variable_key(key), None)
        if raw in (None, ""):
            return None
        return json.loads(raw)

    def set(self, key: str, value: Any) -> None:
        """Store ``value`` as JSON in the Variable ``key``."""
        _variables().set(variable_key(key), json.dumps(value, sort_keys=True))


class MemoryStore:
    """A process-local store, for hooks used outside Airflow and for tests."""

    def __init__(self) -> None:
        self._values: dict[str, str] = {}

    def get(self, key: str) -> Any:
        """The value stored under ``key``, or ``None``."""
        raw = self._values.get(key)
        return None if raw is None else json.loads(raw)

    def set(self, key: str, value: Any) -> None:
        """Store ``value`` (JSON round-tripped, as a Variable would be)."""
        self._values[key] = json.dumps(value)


@contextlib.contextmanager
def variable_lock(key: str) -> Iterator[None]:
    """One read-modify-write of the Variable ``key`` at a time on this host."""
    with host_lock("variable", key):
        yield


def update(store: KeyValueStore, key: str, change: Callable[[Any], Any]) -> Any:
    """Write ``change(value)`` over the value of ``key`` (``None`` when absent), atomically
    against every other update of ``key`` on this host; returns the new value.

    When ``change`` returns the value unchanged, nothing is written (one call saved).
    """
    with variable_lock(key):
        old = store.get(key)
        new = change(old)
        if new != old:
            store.set(key, new)
        return new


def variables_reachable() -> bool:
    """Whether Airflow Variables can be used here: inside a task or the triggerer, or with
    a metadata database that has its tables (a script next to a deployment).

    Hooks used outside Airflow skip what needs Variables instead of logging an error per
    poll. Only a positive answer could be cached safely, so none is.
    """
    from airflow.sdk.execution_time import task_runner

    if getattr(task_runner, "SUPERVISOR_COMMS", None) is not None:
        return True
    try:
        from airflow import settings
        from sqlalchemy import inspect

        return bool(settings.engine is not None and inspect(settings.engine).has_table("variable"))
    except Exception:
        return False


def _variables() -> Any:
    """The Variable API that works where this code runs.

    Inside a task or the triggerer, the Task SDK talks to Airflow's API server; a script
    or the CLI has no such channel and uses the metadata database directly.
    """
    from airflow.sdk.execution_time import task_runner

    if getattr(task_runner, "SUPERVISOR_COMMS", None) is not None:
        from airflow.sdk import Variable

        return Variable
    from airflow.models import Variable as DatabaseVariable

    return DatabaseVariable
