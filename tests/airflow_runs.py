"""Helpers to run DAGs with ``dag.test()`` and read what their tasks returned."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from typing import Any

from sqlalchemy import select

from tests.conftest import REPO


def run_dag(dag: Any, **conf: Any) -> Any:
    """Run ``dag`` in this process (triggers inline) and return its DagRun."""
    return dag.test(run_conf=conf)


def task_result(dag_run: Any, task_id: str) -> Any:
    """The ``return_value`` XCom of ``task_id`` in ``dag_run``, or None."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        row = session.scalars(
            select(XComModel).where(
                XComModel.dag_id == dag_run.dag_id,
                XComModel.run_id == dag_run.run_id,
                XComModel.task_id == task_id,
                XComModel.key == "return_value",
            )
        ).first()
        return None if row is None else XComModel.deserialize_value(row)


def task_states(dag_run: Any) -> dict[str, str]:
    """Task id -> final state of every task instance in ``dag_run``."""
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session

    with create_session() as session:
        rows = session.scalars(
            select(TaskInstance).where(
                TaskInstance.dag_id == dag_run.dag_id, TaskInstance.run_id == dag_run.run_id
            )
        ).all()
        return {row.task_id: str(row.state) for row in rows}


def run_killed(script: str, *args: str, point: str, timeout: float) -> None:
    """Run ``script`` (Python calling ``dag.test()``) in a fresh process killed at ``point``.

    The fault-injecting DAGs in ``tests/dags`` die with SIGKILL at the point named by
    ``MAIL_TEST_CRASH_AT``; the script starts with ``import tests.conftest`` to share this
    process's Airflow home and DB. A fresh process, not a fork: a forked one would wait
    forever for the parent's in-process execution API thread. Fails unless it was killed.
    """
    child = subprocess.run(
        [sys.executable, "-c", script, *args],
        env={**os.environ, "MAIL_TEST_CRASH_AT": point, "PYTHONPATH": str(REPO)},
        capture_output=True,
        timeout=timeout,
        cwd=REPO,
    )
    assert child.returncode == -signal.SIGKILL, child.stderr.decode()[-3000:]
