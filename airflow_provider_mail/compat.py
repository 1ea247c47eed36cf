"""Every Airflow import that differs between the supported Airflow versions (3.0 to 3.3).

The rest of the package imports these names from here, never the moving ones from
Airflow directly, so that each difference is decided once:

- ``AirflowException``: ``airflow.sdk.exceptions`` from 3.1, ``airflow.exceptions`` on 3.0.
- ``AirflowSensorTimeout`` and ``AirflowSkipException``: ``airflow.sdk.exceptions`` from
  3.2, ``airflow.exceptions`` before (the Task SDK of 3.0 and 3.1 catches those).
- ``BaseHook``: ``airflow.sdk`` from 3.1, ``airflow.hooks.base`` on 3.0.
- :func:`aget_connection`: ``BaseHook.aget_connection`` from 3.1; on 3.0 the blocking
  lookup runs in a worker thread, as Airflow 3.0's trigger guide does with ``sync_to_async``.
- :func:`variable_key`: Airflow 3.0's Execution API cannot set a Variable whose key holds a
  ``/`` (its route takes one path segment: 404), so on 3.0 the provider's keys use ``:``.

Names that are the same on every supported version (``airflow.sdk.BaseOperator``,
``BaseSensorOperator``, ``PokeReturnValue``, ``Variable``, ``ObjectStoragePath``,
``Asset``, ``AssetWatcher``, ``airflow.triggers.base``) are imported where they are used.
"""

from __future__ import annotations

import asyncio
from typing import Any

from airflow import __version__ as _AIRFLOW_VERSION

try:
    from airflow.sdk.exceptions import AirflowException
except ImportError:  # Airflow 3.0
    from airflow.exceptions import (  # type: ignore[no-redef, attr-defined, unused-ignore]
        AirflowException,
    )

try:
    from airflow.sdk.exceptions import AirflowSensorTimeout, AirflowSkipException
except ImportError:  # Airflow 3.0 and 3.1
    from airflow.exceptions import (  # type: ignore[no-redef, unused-ignore]
        AirflowSensorTimeout,
        AirflowSkipException,
    )

try:
    from airflow.sdk import BaseHook
except ImportError:  # Airflow 3.0
    from airflow.hooks.base import BaseHook  # type: ignore[no-redef, attr-defined, unused-ignore]

__all__ = [
    "AirflowException",
    "AirflowSensorTimeout",
    "AirflowSkipException",
    "BaseHook",
    "aget_connection",
    "variable_key",
]

# ``airflow.__version__`` rather than the package metadata: reading that scans every
# installed distribution, a few ms of every DAG file's import (benchmarks/imports.py).
_SLASHES_IN_VARIABLE_KEYS = not _AIRFLOW_VERSION.startswith("3.0.")


def variable_key(key: str) -> str:
    """``key`` as the Variable's name: as given from Airflow 3.1, ``/`` -> ``:`` on 3.0."""
    return key if _SLASHES_IN_VARIABLE_KEYS else key.replace("/", ":")


async def aget_connection(conn_id: str) -> Any:
    """The Airflow connection ``conn_id``, looked up without blocking the event loop."""
    lookup = getattr(BaseHook, "aget_connection", None)
    if lookup is not None:
        return await lookup(conn_id)
    return await asyncio.to_thread(BaseHook.get_connection, conn_id)
