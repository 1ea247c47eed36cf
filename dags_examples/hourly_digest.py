"""A scheduled batch job: every hour, one digest email of a folder's new mail.

Uses the hooks' Python API from TaskFlow: one poll of every unseen message in the folder
(``max_emails=-1``), then one email listing them. An hour without mail sends nothing.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import DAG, Param, task

from airflow_provider_mail.hooks.imap import ImapHook
from airflow_provider_mail.operators.send import SendEmailOperator

DOC = """
### Hourly Mail Digest

Once an hour, one email to the team listing every unseen message of a folder (date,
sender, subject); the listed messages are marked seen. An hour without mail sends nothing.

**Connections:** `mail_imap_default` (Receive Email, IMAP) and `mail_smtp_default`
(Send Email, SMTP).

**How it runs:** unpause it; it runs at the top of each hour. Triggering it by hand
(with other params, such as another folder) is fine: it is a batch job, not a waiting one.

**What to change:** the params' defaults, the `schedule`, the digest's text in
`write_digest`.
"""

with DAG(
    dag_id="hourly_mail_digest",
    description="Once an hour, one email listing the new mail of a folder (IMAP).",
    doc_md=DOC,
    schedule="@hourly",
    catchup=False,
    tags=["mail", "example"],
    params={
        "imap_conn_id": Param(
            "mail_imap_default",
            type="string",
            title="IMAP connection",
            description="The mail_imap connection of the mailbox to summarise.",
        ),
        "smtp_conn_id": Param(
            "mail_smtp_default",
            type="string",
            title="SMTP connection",
            description="The mail_smtp connection that sends the digest.",
        ),
        "folder": Param(
            "INBOX",
            type="string",
            title="Folder",
            description="The IMAP folder whose unseen mail is listed, such as INBOX or Sales.",
        ),
        "digest_to": Param(
            "team@example.com",
            type="string",
            title="Digest recipient",
            description="Who receives the digest.",
        ),
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
