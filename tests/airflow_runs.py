"""Helpers to run DAGs with ``dag.test()`` and read what their tasks returned."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select


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
