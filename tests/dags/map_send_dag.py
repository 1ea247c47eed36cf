"""Test DAG: two received-message records -> MapOperator -> SendEmailOperator.

The SMTP connection id comes from the ``MAP_SEND_DAG_CONN_ID`` environment variable
(default ``mail_smtp_default``), so the test can point it at its own server.
"""

from __future__ import annotations

import datetime as dt
import os
from typing import Any

from airflow.sdk import dag, task

from airflow_provider_mail.operators.map import MapOperator
from airflow_provider_mail.operators.send import SendEmailOperator

CONN_ID = os.environ.get("MAP_SEND_DAG_CONN_ID", "mail_smtp_default")


def _record(uid: int, sender: str, subject: str, text: str) -> dict[str, Any]:
    return {
        "message_id": f"<incoming-{uid}@example.org>",
        "from": sender,
        "to": "info@example.com",
        "cc": "",
        "bcc": "",
        "reply_to": "",
        "subject": subject,
        "date": "2024-05-01T12:00:00+00:00",
        "text": text,
        "html": None,
        "attachments": [],
        "folder": "INBOX",
        "uid": uid,
        "uidvalidity": 1,
        "uidl": None,
        "size": 321,
    }


@dag(
    dag_id="test_map_send",
    schedule=None,
    start_date=dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc),
    catchup=False,
    tags=["test"],
)
def map_send() -> None:
    @task
    def obtain_info_emails() -> list[dict[str, Any]]:
        return [
            _record(1, "Jane Doe <jane@example.org>", "Pricing?", "How much is it?"),
            _record(2, "mike@example.net", "Demo {{ ds }}", "Can I see a demo?"),
        ]

    mapped = MapOperator(
        task_id="map_to_leads",
        source=obtain_info_emails(),
        mapping={
            "to": "leads@example.com",
            "reply_to": '{{ item["from"] }}',
            "subject": "New lead: {{ subject }}",
            "text": '{{ item["from"] | name or item["from"] | address }} wrote: {{ text }}',
        },
    )
    SendEmailOperator(
        task_id="send_emails_to_leads",
        conn_id=CONN_ID,
        from_email="Info Desk <info@example.com>",
        to="fallback@example.com",
        bcc="archive@example.com",
        subject="Fallback subject",
        data=mapped.output,
        parameter_priority="consumed_data",
    )


map_send_dag = map_send()
