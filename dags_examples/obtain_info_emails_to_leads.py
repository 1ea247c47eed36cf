"""The reference integration: new mail in the info@ inbox -> map -> send to the leads.

"Obtain Info Emails" (IMAP, inbox, unseen only, delay 5 s, max 5) -> map each message to
a lead notification -> "Send Emails to Leads" (SMTP, parameter priority consumed data).

It runs continuously, one run after the other: each run waits in the triggerer until
unseen mail arrives, then maps and forwards up to five messages, oldest first. Copy it
and change the params (connection ids, the leads' address) or the mapping.
"""

from __future__ import annotations

from airflow.sdk import DAG, Param

from airflow_provider_mail.operators.map import MapOperator
from airflow_provider_mail.operators.send import SendEmailOperator
from airflow_provider_mail.sensors.receive import ReceiveEmailSensor

with DAG(
    dag_id="obtain_info_emails_to_leads",
    schedule="@continuous",
    max_active_runs=1,
    catchup=False,
    tags=["mail", "example"],
    params={
        "imap_conn_id": Param("mail_imap_default", type="string"),
        "smtp_conn_id": Param("mail_smtp_default", type="string"),
        "leads_email": Param("leads@example.com", type="string"),
    },
) as dag:
    obtain_info_emails = ReceiveEmailSensor(
        task_id="obtain_info_emails",
        conn_id="{{ params.imap_conn_id }}",
        folder=None,
        unseen_only=True,
        delay=5,
        max_emails=5,
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
