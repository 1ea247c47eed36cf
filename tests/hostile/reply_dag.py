"""Test DAG: a stranger's email -> MapOperator (``Re: {{ subject }}``) -> SendEmailOperator.

The raw email comes from the ``HOSTILE_REPLY_SUBJECT`` environment variable (its Subject
header as the stranger wrote it), is turned into a record by the provider's own parser,
mapped into a reply and sent through ``HOSTILE_REPLY_CONN_ID``.
"""

from __future__ import annotations

import os
import tempfile
from typing import Any

from airflow_provider_mail.mail.attachments import DirectorySink
from airflow_provider_mail.mail.parse import build_record
from tests.dags.records_to_mail import records_to_mail_dag

CONN_ID = os.environ.get("HOSTILE_REPLY_CONN_ID", "mail_smtp_default")
SUBJECT = os.environ.get("HOSTILE_REPLY_SUBJECT", "Hello")


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


hostile_reply_dag = records_to_mail_dag(
    "test_hostile_reply",
    strangers_email,
    mapping={
        "to": '{{ item["from"] | address }}',
        "subject": "Re: {{ subject }}",
        "text": "Thanks for your message.",
    },
    conn_id=CONN_ID,
    from_email="Info Desk <info@example.com>",
)
