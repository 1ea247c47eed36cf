"""DAGs for the receive tests: run with ``dag.test(run_conf={"conn_id": ...})``."""

from __future__ import annotations

from typing import Any

from airflow.sdk import DAG, Param, task

from airflow_provider_mail.sensors.receive import ReceiveEmailSensor


def _receive_dag(dag_id: str, **sensor_kwargs: Any) -> DAG:
    with DAG(
        dag_id,
        schedule=None,
        params={"conn_id": Param("mail_imap_default", type="string"), "folder": Param("", type="string")},
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
