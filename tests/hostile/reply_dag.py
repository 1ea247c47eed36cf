"""Test DAG: a stranger's email -> MapOperator (``Re: {{ subject }}``) -> SendEmailOperator.

The raw email comes from the ``HOSTILE_REPLY_SUBJECT`` environment variable (its Subject
header as the stranger wrote it), is turned into a record by the provider's own parser,
mapped into a reply and sent through ``HOSTILE_REPLY_CONN_ID``.
"""

from __future__ import annotations

import datetime as dt
import os
import tempfile
from typing import Any

from airflow.sdk import dag, task

from airflow_provider_mail.mail.attachments import DirectorySink
from airflow_provider_mail.mail.parse import build_record
from airflow_provider_mail.operators.map import MapOperator
from airflow_provider_mail.operators.send import SendEmailOperator

CONN_ID = os.environ.get("HOSTILE_REPLY_CONN_ID", "mail_smtp_default")
SUBJECT = os.environ.get("HOSTILE_REPLY_SUBJECT", "Hello")


@dag(
    dag_id="test_hostile_reply",
    schedule=None,
    start_date=dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc),
    catchup=False,
    tags=["test"],
)
def hostile_reply() -> None:
    @task
    def strangers_email() -> list[dict[str, Any]]:
        raw = (
            "From: Stranger <stranger@example.net>\r\n"
            "To: info@example.com\r\n"
            f"Subject: {SUBJECT}\r\n"
            "Message-ID: <attack@example.net>\r\n"
            "\r\n"
            "Please answer.\r\n"
        ).encode()
        sink = DirectorySink(tempfile.mkdtemp(prefix="hostile-reply-"))
        return [build_record(raw, folder="INBOX", attachments=sink)]

    mapped = MapOperator(
        task_id="map_reply",
        source=strangers_email(),
        mapping={
            "to": '{{ item["from"] | address }}',
            "subject": "Re: {{ subject }}",
            "text": "Thanks for your message.",
        },
    )
    SendEmailOperator(
        task_id="send_reply",
        conn_id=CONN_ID,
        from_email="Info Desk <info@example.com>",
        data=mapped.output,
        parameter_priority="consumed_data",
    )


hostile_reply_dag = hostile_reply()
