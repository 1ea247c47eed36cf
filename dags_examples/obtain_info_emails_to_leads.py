"""The reference integration: new mail in the info@ inbox -> map -> send to the leads.

"Obtain Info Emails" (IMAP, inbox, unseen only, delay 5 s, max 5) -> map each message to
a lead notification -> "Send Emails to Leads" (SMTP, parameter priority consumed data).

It keeps running, one run after the other: a run starts every 30 seconds at most, one at
a time (``max_active_runs=1``); each run waits in the triggerer until unseen mail
arrives, then maps and forwards up to five messages, oldest first. Not
``schedule="@continuous"``: on Airflow 3.2/3.3 its scheduler creates the first run only
(see docs/deployment.md). Copy it and change the params (connection ids, the leads'
address) or the mapping.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import DAG, Param

from airflow_provider_mail.operators.map import MapOperator
from airflow_provider_mail.operators.send import SendEmailOperator
from airflow_provider_mail.sensors.receive import ReceiveEmailSensor

DOC = """
### Obtain Info Emails to Leads

Every new (unseen) email in the **info@ inbox** becomes a notification to the **leads**,
with the sender as Reply-To, up to five per run, oldest first.

**Connections:** `mail_imap_default` (Receive Email, IMAP) for the inbox and
`mail_smtp_default` (Send Email, SMTP) for sending; set them in Admin > Connections.

**How it runs:** unpause it, don't trigger it by hand. A run starts every 30 seconds at
most and one at a time: it waits in the triggerer until mail arrives (no worker slot),
forwards it, and the next run starts. A run triggered by hand is queued behind the
waiting one; its params are used only for that run.

**What to change:** the params' defaults (connection ids, the leads' address), the
mapping in `map_to_leads` (subject, text), or `max_emails` / `delay` of the sensor.
Received messages are marked seen: reading the inbox in a mail program does not matter,
but marking a message unread there makes it arrive again.
"""

with DAG(
    dag_id="obtain_info_emails_to_leads",
    description="Forward new mail of the info@ inbox (IMAP) to the leads (SMTP), 5 at a time.",
    doc_md=DOC,
    # A run every 30 s at most, one at a time: a run without mail waits in the triggerer
    # (no worker slot), and the next starts within 30 s of the last one's end.
    schedule=timedelta(seconds=30),
    max_active_runs=1,
    catchup=False,
    tags=["mail", "example"],
    params={
        "imap_conn_id": Param(
            "mail_imap_default",
            type="string",
            title="IMAP connection",
            description="The mail_imap connection of the inbox to read (Admin > Connections).",
        ),
        "smtp_conn_id": Param(
            "mail_smtp_default",
            type="string",
            title="SMTP connection",
            description="The mail_smtp connection that sends the notifications.",
        ),
        "leads_email": Param(
            "leads@example.com",
            type="string",
            title="Leads address",
            description="Who receives one notification per new email.",
        ),
    },
) as dag:
    obtain_info_emails = ReceiveEmailSensor(
        task_id="obtain_info_emails",
        conn_id="{{ params.imap_conn_id }}",
        folder=None,
        unseen_only=True,
        delay=5,
        max_emails=5,
        # A worker killed mid-hand-over: the retry delivers what that try had taken.
        retries=3,
        retry_delay=timedelta(seconds=10),
    )

    map_to_leads = MapOperator(
        task_id="map_to_leads",
        source=obtain_info_emails.output,
        mapping={
            "reply_to": '{{ item["from"] }}',
            "subject": "New lead: {{ subject }}",
            "text": (
                '{{ item["from"] | name or item["from"] | address }} '
                '<{{ item["from"] | address }}> wrote on {{ date }}:\n\n{{ text }}'
            ),
        },
    )

    SendEmailOperator(
        task_id="send_emails_to_leads",
        conn_id="{{ params.smtp_conn_id }}",
        from_email="Info Desk <info@example.com>",
        # The mapping sets no "to": with consumed_data priority the operator's value fills it.
        to="{{ params.leads_email }}",
        subject="New lead",
        data=map_to_leads.output,
        parameter_priority="consumed_data",
    )
