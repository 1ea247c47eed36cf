"""Test DAG: a received email -> MapOperator -> a threaded auto-reply forwarding its files.

Everything a mapper produces is text: ``{{ item.attachments }}`` and a ``headers`` dict
arrive at SendEmailOperator rendered, and must still go out as files and headers. The SMTP
connection id comes from ``REPLY_FORWARD_CONN_ID``.
"""

from __future__ import annotations

import os
from email.message import EmailMessage
from typing import Any

from airflow_provider_mail.mail.attachments import DirectorySink, default_attachments_dir
from airflow_provider_mail.mail.parse import build_record
from tests.dags.records_to_mail import records_to_mail_dag

CONN_ID = os.environ.get("REPLY_FORWARD_CONN_ID", "mail_smtp_default")
BLOB = bytes(range(256)) * 16 + b"\r\n.\r\n\x00"


def strangers_message() -> bytes:
    message = EmailMessage()
    message["From"] = "Jane Doe <jane@example.org>"
    message["To"] = "support@example.com"
    message["Subject"] = "Contract"
    message["Message-ID"] = "<contract-2@example.org>"
    message["References"] = "<contract-1@example.org>"
    message["In-Reply-To"] = "<contract-1@example.org>"
    message.set_content("Signed copy attached.")
    message.add_attachment(BLOB, "application", "pdf", filename="signed 'final'.pdf")
    return message.as_bytes()


def received(run_id: str | None = None) -> list[dict[str, Any]]:
    sink = DirectorySink(default_attachments_dir("test_reply_forward", str(run_id)))
    return [build_record(strangers_message(), folder="INBOX", attachments=sink)]


reply_forward_dag = records_to_mail_dag(
    "test_reply_forward",
    received,
    mapping={
        "to": '{{ item["from"] | address }}',
        "subject": "Re: {{ subject }}",
        "text": "We received your files; copies attached.",
        "in_reply_to": "{{ message_id }}",
        "references": "{{ (references + [message_id]) | join(' ') }}",
        "attachments": "{{ item.attachments }}",
        "headers": "{{ {'X-Ticket-Id': '4711'} }}",
    },
    conn_id=CONN_ID,
    from_email="Support <support@example.com>",
    auto_submitted="auto-replied",
    headers={"X-Team": "support"},
)
