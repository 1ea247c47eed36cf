"""Test DAG: two received-message records -> MapOperator -> SendEmailOperator.

The SMTP connection id comes from the ``MAP_SEND_DAG_CONN_ID`` environment variable
(default ``mail_smtp_default``), so the test can point it at its own server. (Airflow's DAG
bag skips files that do not mention both "airflow" and "dag": this line mentions both.)
"""

from __future__ import annotations

import os
from typing import Any

from tests.dags.records_to_mail import records_to_mail_dag

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


def obtain_info_emails() -> list[dict[str, Any]]:
    return [
        _record(1, "Jane Doe <jane@example.org>", "Pricing?", "How much is it?"),
        _record(2, "mike@example.net", "Demo {{ ds }}", "Can I see a demo?"),
    ]


map_send_dag = records_to_mail_dag(
    "test_map_send",
    obtain_info_emails,
    mapping={
        "to": "leads@example.com",
        "reply_to": '{{ item["from"] }}',
        "subject": "New lead: {{ subject }}",
        "text": '{{ item["from"] | name or item["from"] | address }} wrote: {{ text }}',
    },
    map_task_id="map_to_leads",
    send_task_id="send_emails_to_leads",
    conn_id=CONN_ID,
    from_email="Info Desk <info@example.com>",
    to="fallback@example.com",
    bcc="archive@example.com",
    subject="Fallback subject",
)
