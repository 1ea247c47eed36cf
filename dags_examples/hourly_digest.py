"""A scheduled batch job: every hour, one digest email of a folder's new mail.

Uses the hooks' Python API from TaskFlow: one poll of every unseen message in the folder
(``max_emails=-1``), then one email listing them. An hour without mail sends nothing.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import DAG, Param, task

from airflow_provider_mail.hooks.imap import ImapHook
from airflow_provider_mail.operators.send import SendEmailOperator

with DAG(
    dag_id="hourly_mail_digest",
    schedule="@hourly",
    catchup=False,
    tags=["mail", "example"],
    params={
        "imap_conn_id": Param("mail_imap_default", type="string"),
        "smtp_conn_id": Param("mail_smtp_default", type="string"),
        "folder": Param("INBOX", type="string"),
        "digest_to": Param("team@example.com", type="string"),
    },
) as dag:

    @task
    def collect_new_mail(params: dict[str, Any]) -> list[dict[str, Any]]:
        with ImapHook(params["imap_conn_id"]) as hook:
            return hook.receive(folder=params["folder"], unseen_only=True, max_emails=-1)

    @task
    def write_digest(records: list[dict[str, Any]], params: dict[str, Any]) -> list[dict[str, str]]:
        if not records:
            return []
        lines = [f"- {r['date'] or 'undated'}  {r['from']}: {r['subject']}" for r in records]
        return [
            {
                "subject": f"{len(records)} new message(s) in {params['folder']}",
                "text": "\n".join(lines),
            }
        ]

    SendEmailOperator(
        task_id="send_digest",
        conn_id="{{ params.smtp_conn_id }}",
        from_email="Mail digest <digest@example.com>",
        to="{{ params.digest_to }}",
        data=write_digest(collect_new_mail()),
        parameter_priority="consumed_data",
    )
