"""Airflow connections that live only in the environment (``AIRFLOW_CONN_<ID>``)."""

from __future__ import annotations

import json
from typing import Any


def connection_variable(
    conn_id: str,
    conn_type: str,
    *,
    host: str = "localhost",
    port: int | None = None,
    login: str | None = None,
    password: str | None = None,
    **extra: Any,
) -> tuple[str, str]:
    """The environment variable (name, JSON value) that defines one connection.

    ``localhost`` (not 127.0.0.1) because the throw-away certificate names ``localhost``.
    """
    payload = {
        "conn_type": conn_type,
        "host": host,
        "port": port,
        "login": login,
        "password": password,
        "extra": extra,
    }
    return f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(payload)
