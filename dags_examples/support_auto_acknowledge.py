"""Auto-acknowledge: answer everyone who writes to the support inbox (POP3).

Each run waits for mail not handed over before (POP3 remembers the unique ids it
returned, in an Airflow Variable), then replies to the sender, or to their Reply-To,
quoting the subject. Messages that are themselves automatic replies (an "Auto" subject
prefix such as "Automatic reply:" or "Auto:") are not answered, which prevents
reply loops between two auto-responders. Scheduled like the reference integration: a
run every 30 seconds at most, one at a time (not ``@continuous``, see docs/deployment.md).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from airflow.sdk import DAG, Param, task

from airflow_provider_mail.operators.map import MapOperator
from airflow_provider_mail.operators.send import SendEmailOperator
from airflow_provider_mail.sensors.receive import ReceiveEmailSensor

DOC = """
### Support Auto-Acknowledge

Answers everyone who writes to the **support inbox** (POP3): "we received your message
and will answer within one working day", to the sender's Reply-To or From, quoting the
subject. Automatic replies ("Auto...", "Out of office") are not answered, so two
auto-responders never write to each other forever.

**Connections:** `mail_pop3_default` (Receive Email, POP3) for the inbox and
`mail_smtp_default` (Send Email, SMTP) for the replies.

**How it runs:** unpause it, don't trigger it by hand. A run starts every 30 seconds at
most and one at a time; it waits in the triggerer until new mail arrives (checking every
30 s), answers up to 20 messages, and the next run starts. POP3 has no "seen" flag: the
provider remembers what it answered in the Variable `mail_provider/pop3_seen/...`
(delete it to answer everything again).

**What to change:** the params' defaults, the reply text in `write_acknowledgements`,
the sender address in `send_acknowledgements`.
"""

with DAG(
    dag_id="support_auto_acknowledge",
    description="Acknowledge every new email of the support inbox (POP3) to its sender.",
    doc_md=DOC,
    schedule=timedelta(seconds=30),
    max_active_runs=1,
    catchup=False,
    tags=["mail", "example"],
    params={
        "pop3_conn_id": Param(
            "mail_pop3_default",
            type="string",
            title="POP3 connection",
            description="The mail_pop3 connection of the support inbox.",
        ),
        "smtp_conn_id": Param(
            "mail_smtp_default",
            type="string",
            title="SMTP connection",
            description="The mail_smtp connection that sends the acknowledgements.",
        ),
    },
) as dag:
    new_requests = ReceiveEmailSensor(
        task_id="new_support_requests",
        conn_id="{{ params.pop3_conn_id }}",
        unseen_only=True,
        delay=30,
        max_emails=20,
        # A worker killed mid-hand-over: the retry delivers what that try had taken.
        retries=3,
        retry_delay=timedelta(seconds=10),
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
