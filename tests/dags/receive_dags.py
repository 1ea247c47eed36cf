"""DAGs for the receive tests: run with ``dag.test(run_conf={"conn_id": ...})``."""

from __future__ import annotations

import os
from typing import Any

from airflow.sdk import DAG, Param, task

from airflow_provider_mail.sensors.receive import ReceiveEmailSensor
from tests.faults.injection import inject_crash


def _receive_dag(dag_id: str, **sensor_kwargs: Any) -> DAG:
    with DAG(
        dag_id,
        schedule=None,
        params={
            "conn_id": Param("mail_imap_default", type="string"),
            "folder": Param("", type="string"),
        },
    ) as dag:
        received = ReceiveEmailSensor(
            task_id="receive",
            conn_id="{{ params.conn_id }}",
            folder="{{ params.folder }}",
            timeout=60,
            **sensor_kwargs,
        )

        @task
        def collect(records: list[dict[str, Any]]) -> list[str]:
            return [record["subject"] for record in records]

        collect(received.output)
    return dag


receive_unseen_deferrable = _receive_dag(
    "test_receive_unseen_deferrable", unseen_only=True, max_emails=5, delay=0.5
)
receive_unseen_poke = _receive_dag(
    "test_receive_unseen_poke", unseen_only=True, max_emails=5, delay=0.5, deferrable=False
)
receive_all_deferrable = _receive_dag(
    "test_receive_all_deferrable", unseen_only=False, max_emails=-1, delay=0.5
)


class CrashingReceiveEmailSensor(ReceiveEmailSensor):
    """Fault injection: dies with SIGKILL at the point named by ``MAIL_TEST_CRASH_AT``.

    ``before_fetch`` (claim recorded, nothing read), ``after_fetch`` (records built,
    nothing marked seen) or ``after_mark`` (marked seen, result not yet stored).
    """

    def _hook(self) -> Any:
        return inject_crash(super()._hook(), os.environ.get("MAIL_TEST_CRASH_AT"))


def _crash_dag(dag_id: str, **sensor_kwargs: Any) -> DAG:
    with DAG(
        dag_id, schedule=None, params={"conn_id": Param("mail_imap_default", type="string")}
    ) as dag:
        received = CrashingReceiveEmailSensor(
            task_id="receive", conn_id="{{ params.conn_id }}", timeout=60, **sensor_kwargs
        )

        @task
        def collect(records: list[dict[str, Any]]) -> list[str]:
            return [record["message_id"] for record in records]

        collect(received.output)
    return dag


crash_deferrable = _crash_dag("test_receive_crash_deferrable", unseen_only=True, delay=0.5)
crash_poke = _crash_dag("test_receive_crash_poke", unseen_only=True, delay=0.5, deferrable=False)


def _timeout_dag(dag_id: str, **sensor_kwargs: Any) -> DAG:
    with DAG(
        dag_id, schedule=None, params={"conn_id": Param("mail_imap_default", type="string")}
    ) as dag:
        ReceiveEmailSensor(
            task_id="receive", conn_id="{{ params.conn_id }}", delay=0.5, timeout=2, **sensor_kwargs
        )
    return dag


timeout_fails = _timeout_dag("test_receive_timeout_fails")
timeout_soft_fails = _timeout_dag("test_receive_timeout_soft_fails", soft_fail=True)
