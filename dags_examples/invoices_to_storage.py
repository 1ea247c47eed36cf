"""Invoices from one sender: attachments saved to object storage, the mail moved to Processed.

The "Receive Email" start with a server-side ``search`` (only the vendor's mail), its
attachments written straight to object storage (``s3://...``, ``gs://...``, or
``file://...`` on one machine), and ``after_receive="move"``: once the run has the
records, the messages go to the ``Processed`` folder, so the inbox shows what is left to do.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from airflow.sdk import DAG, Param, task

from airflow_provider_mail.sensors.receive import ReceiveEmailSensor

DOC = """
### Invoices to Storage

Waits for mail from the vendor's billing address, saves every attachment (the invoices)
to object storage, lists them, and moves each handled email to the `Processed` folder.

**Connections:** `mail_imap_default` (Receive Email, IMAP). The `Processed` folder must
exist (the task says so before touching any mail if it does not).

**How it runs:** unpause it, don't trigger it by hand: a run starts every 30 seconds at
most and one at a time, each waiting in the triggerer for the vendor's next mail.
The emails are moved only once the run's receive step succeeded: a worker that dies
before leaves them in the inbox for the retry, and none is handed over twice.

**What to change:** the params' defaults (sender, storage URL such as
`s3://accounting/invoices`, folder), and `file_invoices` to book them where you need.
"""

with DAG(
    dag_id="invoices_to_storage",
    description="Invoices from one sender: attachments to object storage, mail to Processed.",
    doc_md=DOC,
    schedule=timedelta(seconds=30),
    catchup=False,
    max_active_runs=1,
    tags=["mail", "example"],
    params={
        "imap_conn_id": Param(
            "mail_imap_default",
            type="string",
            title="IMAP connection",
            description="The mail_imap connection of the mailbox that receives invoices.",
        ),
        "sender": Param(
            "billing@vendor.example",
            type="string",
            title="Invoice sender",
            description="Only mail whose From contains this text is handled.",
        ),
        "storage_url": Param(
            "file:///tmp/invoices",
            type="string",
            title="Storage URL",
            description="Where attachments are saved: s3://bucket/path, gs://..., file:///...",
        ),
        "processed_folder": Param(
            "Processed",
            type="string",
            title="Processed folder",
            description="The IMAP folder handled invoices are moved to (it must exist).",
        ),
    },
) as dag:
    invoices = ReceiveEmailSensor(
        task_id="receive_invoices",
        conn_id="{{ params.imap_conn_id }}",
        search={"from": "{{ params.sender }}"},
        after_receive="move",
        move_to="{{ params.processed_folder }}",
        max_emails=-1,
        delay=5,
        attachments_dir="{{ params.storage_url }}/{{ run_id }}",
        retries=3,
        retry_delay=timedelta(seconds=10),
    )

    @task
    def file_invoices(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """One entry per saved attachment: where it is and which email brought it."""
        return [
            {
                "path": attachment["path"],
                "filename": attachment["filename"],
                "size": attachment["size"],
                "subject": record["subject"],
                "message_id": record["message_id"],
            }
            for record in records
            for attachment in record["attachments"]
        ]

    file_invoices(invoices.output)
