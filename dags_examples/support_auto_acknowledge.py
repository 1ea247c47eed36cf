"""Auto-acknowledge: answer everyone who writes to the support inbox (POP3).

Each run waits for mail not handed over before (POP3 remembers the unique ids it
returned, in an Airflow Variable), then replies to the sender, or to their Reply-To,
quoting the subject. Messages that are themselves automatic replies (an "Auto" subject
prefix such as "Automatic reply:" or "Auto:") are not answered, which prevents
reply loops between two auto-responders.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import DAG, Param, task

from airflow_provider_mail.operators.map import MapOperator
from airflow_provider_mail.operators.send import SendEmailOperator
from airflow_provider_mail.sensors.receive import ReceiveEmailSensor

with DAG(
    dag_id="support_auto_acknowledge",
    schedule="@continuous",
    max_active_runs=1,
    catchup=False,
    tags=["mail", "example"],
    params={
        "pop3_conn_id": Param("mail_pop3_default", type="string"),
        "smtp_conn_id": Param("mail_smtp_default", type="string"),
    },
) as dag:
    new_requests = ReceiveEmailSensor(
        task_id="new_support_requests",
        conn_id="{{ params.pop3_conn_id }}",
        unseen_only=True,
        delay=30,
        max_emails=20,
    )

    @task
    def skip_automatic_replies(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [
            r for r in records if not r["subject"].lower().startswith(("auto", "out of office"))
        ]

    acknowledgements = MapOperator(
        task_id="write_acknowledgements",
        source=skip_automatic_replies(new_requests.output),
        mapping={
            "to": '{{ reply_to or item["from"] }}',
            "subject": "Re: {{ subject }}",
            "text": (
                "Hello {{ item['from'] | name or 'there' }},\n\n"
                'we received your message "{{ subject }}" and will answer within one '
                "working day.\n\nThe support team"
            ),
        },
    )

    SendEmailOperator(
        task_id="send_acknowledgements",
        conn_id="{{ params.smtp_conn_id }}",
        from_email="Support <support@example.com>",
        data=acknowledgements.output,
        parameter_priority="consumed_data",
    )
