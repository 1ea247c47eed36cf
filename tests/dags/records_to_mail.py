"""The shape the mapped-send test DAGs share: a task of records -> MapOperator -> SendEmailOperator.

Each test DAG file supplies only what differs: where the records come from, the mapping and
the operator's own values. ``dag.test()`` runs one DAG per file, so each file keeps its DAG;
this module only builds it.
"""

from __future__ import annotations

import datetime as dt
import importlib
import sys
from collections.abc import Callable
from typing import Any

from airflow.sdk import dag, task

from airflow_provider_mail.operators.map import MapOperator
from airflow_provider_mail.operators.send import SendEmailOperator


def records_to_mail_dag(
    dag_id: str,
    records: Callable[..., list[dict[str, Any]]],
    mapping: dict[str, Any],
    *,
    map_task_id: str = "map_reply",
    send_task_id: str = "send_reply",
    **send: Any,
) -> Any:
    """A DAG whose ``records`` task (named after the function) feeds ``mapping`` into one
    SendEmailOperator with ``send`` as its own values; mapped data wins."""

    @dag(
        dag_id=dag_id,
        schedule=None,
        start_date=dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc),
        catchup=False,
        tags=["test"],
    )
    def records_to_mail() -> None:
        mapped = MapOperator(task_id=map_task_id, source=task(records)(), mapping=mapping)
        SendEmailOperator(
            task_id=send_task_id,
            data=mapped.output,
            parameter_priority="consumed_data",
            **send,
        )

    return records_to_mail()


def load_dag_module(name: str) -> Any:
    """Import the test DAG module ``name`` afresh, so it reads the environment set just now."""
    sys.modules.pop(name, None)
    return importlib.import_module(name)
