"""Event-driven start: a DAG run begins when new mail arrives, no sensor task waiting.

An ``AssetWatcher`` runs ``ReceiveEmailTrigger`` in the triggerer. Its event names the
new messages (folder, UIDVALIDITY, UIDs) and the trigger marks them seen. The run then
reads exactly those messages on a worker, where attachments are written, maps them and
forwards them; passing its ``run_id`` makes sure a repeated event (after a triggerer
crash) does not forward a message twice.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import DAG, Asset, AssetWatcher, task

from airflow_provider_mail.hooks.imap import ImapHook
from airflow_provider_mail.operators.map import MapOperator
from airflow_provider_mail.operators.send import SendEmailOperator
from airflow_provider_mail.triggers.receive import ReceiveEmailTrigger

IMAP_CONN_ID = "mail_imap_default"

DOC = """
### New Mail (AssetWatcher)

The event-driven form of the reference integration: a trigger watches the **info@ inbox**
and each batch of new mail (up to 20) starts one run, which reads exactly those messages,
maps them and forwards them to `leads@example.com`. No run waits while the inbox is quiet.

**Connections:** `mail_imap_default` (Receive Email, IMAP) for the inbox, fixed when the
DAG is parsed (a trigger takes no params), and `mail_smtp_default` for sending.

**How it runs:** unpause it, don't trigger it by hand (a run by hand has no mail event and
forwards nothing). The watcher runs in the triggerer from the moment the DAG is unpaused
and marks what it hands over as seen.

**What to change:** `IMAP_CONN_ID`, the trigger's `max_emails` / `delay`, the mapping
and the recipient at the bottom of the file.
"""

info_inbox = Asset(
    "mailbox://info/INBOX",
    watchers=[
        AssetWatcher(
            name="info_inbox_new_mail",
            # after_receive="leave_unread", "delete" or "move" (+ move_to="Processed") work
            # here too; the run's fetch_claimed below then moves or deletes the mail once
            # it succeeded (docs/mailbox_actions.md).
            trigger=ReceiveEmailTrigger(IMAP_CONN_ID, unseen_only=True, max_emails=20, delay=10),
        )
    ],
)

with DAG(
    dag_id="new_mail_asset_watcher",
    description="Event-driven: each batch of new info@ mail (IMAP) starts a run that forwards it.",
    doc_md=DOC,
    schedule=[info_inbox],
    catchup=False,
    tags=["mail", "example"],
) as dag:

    @task
    def fetch_new_mail(
        triggering_asset_events: Any = None, run_id: str | None = None
    ) -> list[dict[str, Any]]:
        records: list[dict[str, Any]] = []
        with ImapHook(IMAP_CONN_ID) as hook:
            for event in triggering_asset_events[info_inbox]:
                # run_id: a repeated event never hands a message to a second run.
                records += hook.fetch_claimed(event.extra["payload"], run_id=run_id)
        return records

    forwarded = MapOperator(
        task_id="map_to_forward",
        source=fetch_new_mail(),
        mapping={
            "subject": "Fwd: {{ subject }}",
            "text": '{{ item["from"] }} wrote:\n\n{{ text }}',
        },
    )

    SendEmailOperator(
        task_id="forward",
        from_email="Info Desk <info@example.com>",
        to="leads@example.com",
        data=forwarded.output,
        parameter_priority="consumed_data",
    )
