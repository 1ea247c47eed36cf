"""What a retry delivers, depending on how far the dead try got with taking its claim.

The ledger entry of a try that died is set up as that try left it; another poller acts
in between, as it could while the task waited for its retry.
"""

from __future__ import annotations

import email
import email.policy
import uuid
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from airflow_provider_mail.exceptions import MailStorageError
from airflow_provider_mail.handover.ledger import RESERVED
from airflow_provider_mail.hooks.imap import ImapHook
from airflow_provider_mail.mail.state import Claim
from airflow_provider_mail.sensors.receive import ReceiveEmailSensor
from airflow_provider_mail.storage import TaskLedger
from devtools.certs import Certificate
from devtools.connections import ConnFactory, receive_connection
from devtools.dovecot import Dovecot
from devtools.messages import numbered


@dataclass
class Scene:
    """Three unseen messages found by a sensor's poll, and that sensor's task instance."""

    conn_id: str
    sensor: ReceiveEmailSensor
    context: dict[str, Any]
    found: Claim


@pytest.fixture
def scene(
    mail_connection: ConnFactory,
    dovecot: Dovecot,
    certificate: Certificate,
    tmp_path: Path,
    airflow_db: object,
) -> Scene:
    dovecot.clear("info")
    conn_id = receive_connection(mail_connection, dovecot, "imap", "ssl", certificate)
    dovecot.deliver("info", [_with_attachment(raw) for raw in numbered(3, "Retry")])
    with ImapHook(conn_id) as hook:
        found = hook.find_new(None, unseen_only=True, max_emails=-1)
    sensor = ReceiveEmailSensor(
        task_id="receive", conn_id=conn_id, unseen_only=True, attachments_dir=str(tmp_path)
    )
    ti = SimpleNamespace(dag_id="retry", task_id="receive", run_id=str(uuid.uuid4()), map_index=-1)
    return Scene(conn_id, sensor, {"ti": ti}, found)


def _with_attachment(raw: bytes) -> bytes:
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    message.add_attachment(
        b"%PDF-1.4 tiny", maintype="application", subtype="pdf", filename="a.pdf"
    )
    return message.as_bytes()


def _ids(records: list[dict[str, Any]]) -> list[str]:
    return [str(record["message_id"]) for record in records]


def test_a_try_that_died_before_taking_leaves_to_others_what_they_took_meanwhile(
    scene: Scene,
) -> None:
    conn_id, sensor, context, found = scene.conn_id, scene.sensor, scene.context, scene.found
    TaskLedger.for_task("handover", context).record(found.to_payload())  # then it died
    with ImapHook(conn_id) as other:
        second = Claim("imap", "INBOX", found.uidvalidity, uids=found.uids[1:2])
        assert other.mailbox.take(second) == second  # another poller took the second message

    records = sensor.deliver_unfinished(context)

    assert _ids(records) == ["<retry-0@example.com>", "<retry-2@example.com>"]
    entry = TaskLedger.for_task("handover", context).pending()
    assert entry is not None and entry[RESERVED] and entry["uids"] == [found.uids[0], found.uids[2]]


def test_a_try_that_died_after_reserving_gets_all_it_reserved(scene: Scene) -> None:
    conn_id, sensor, context, found = scene.conn_id, scene.sensor, scene.context, scene.found
    ledger = TaskLedger.for_task("handover", context)
    ledger.record(found.to_payload())
    with ImapHook(conn_id) as dead:
        # It reserved the three and marked only the first before it died.
        first = Claim("imap", "INBOX", found.uidvalidity, uids=found.uids[:1])
        dead.mailbox.take(
            first, reserve=lambda _: ledger.record({**found.to_payload(), RESERVED: True})
        )

    records = sensor.deliver_unfinished(context)

    assert _ids(records) == [f"<retry-{i}@example.com>" for i in range(3)]
    with ImapHook(conn_id) as hook:  # what the retry delivered is taken: no one else gets it
        assert not hook.find_new(None, unseen_only=True, max_emails=-1)


def test_a_hand_over_whose_read_fails_gives_the_messages_back(scene: Scene, tmp_path: Path) -> None:
    """Without a retry (Airflow's default) the next run must still get them."""
    conn_id, sensor, context, found = scene.conn_id, scene.sensor, scene.context, scene.found
    blocker = tmp_path / "a-file"
    blocker.write_text("attachments cannot go below a file")
    sensor.attachments_dir = str(blocker / "attachments")
    with pytest.raises(MailStorageError):
        sensor._hand_over(context, found)
    with ImapHook(conn_id) as hook:
        assert hook.find_new(None, unseen_only=True, max_emails=-1).uids == found.uids
    entry = TaskLedger.for_task("handover", context).pending()
    assert entry is not None and RESERVED not in entry  # a retry takes them again

    sensor.attachments_dir = str(tmp_path / "attachments")
    assert _ids(sensor.deliver_unfinished(context)) == [
        f"<retry-{i}@example.com>" for i in range(3)
    ]
