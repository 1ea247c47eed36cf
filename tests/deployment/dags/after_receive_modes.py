"""The reference integration's shape once per ``after_receive`` mode, for the deployment suite.

``deployment_after_receive_<mode>`` (``move`` to ``Processed``, ``delete``,
``leave_unread``): a deferrable ``ReceiveEmailSensor`` on the connection
``mail_imap_<mode>`` (a Dovecot user of its own) -> map -> ``SendEmailOperator`` forwarding
each message to ``<mode>@leads.example``. Scheduled as the examples are (a run every few
seconds at most, one at a time), with short waits so that the suite's waves pass quickly.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import DAG

from airflow_provider_mail.operators.map import MapOperator
from airflow_provider_mail.operators.send import SendEmailOperator
from airflow_provider_mail.sensors.receive import ReceiveEmailSensor

MODES = {
    "move": {"after_receive": "move", "move_to": "Processed"},
    "delete": {"after_receive": "delete"},
    "leave_unread": {"after_receive": "leave_unread"},
}


def forward_dag(mode: str) -> DAG:
    with DAG(
        dag_id=f"deployment_after_receive_{mode}",
        schedule=timedelta(seconds=10),
        max_active_runs=1,
        catchup=False,
        tags=["mail", "deployment-suite"],
    ) as dag:
        received = ReceiveEmailSensor(
            task_id="receive",
            conn_id=f"mail_imap_{mode}",
            delay=2,
            max_emails=20,
            retries=3,
            retry_delay=timedelta(seconds=5),
            **MODES[mode],
        )
        mapped = MapOperator(
            task_id="map",
            source=received.output,
            mapping={"subject": "{{ subject }}", "text": "{{ text }}"},
        )
        SendEmailOperator(
            task_id="forward",
            conn_id="mail_smtp_default",
            from_email="deployment@example.com",
            to=f"{mode}@leads.example",
            subject="forwarded",
            data=mapped.output,
            parameter_priority="consumed_data",
        )
    return dag


for _mode in MODES:
    globals()[f"deployment_after_receive_{_mode}"] = forward_dag(_mode)
