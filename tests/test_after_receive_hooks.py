"""``after_receive`` and ``search`` through ``ImapHook.receive`` / ``Pop3Hook.receive`` (Dovecot).

The hooks have no task to wait for, so ``move`` and ``delete`` happen before ``receive``
returns; the sensor paths are in ``tests/test_after_receive_sensor.py``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from imapclient import DELETED, FLAGGED, SEEN

from airflow_provider_mail.exceptions import MailConfigError
from airflow_provider_mail.hooks.imap import ImapHook
from airflow_provider_mail.hooks.pop3 import Pop3Hook
from airflow_provider_mail.keyvalue import MemoryStore
from devtools.certs import Certificate
from devtools.connections import ConnFactory, receive_connection
from devtools.dovecot import Dovecot
from tests.test_mailbox_actions import mail


@pytest.fixture
def info(dovecot: Dovecot) -> Iterator[Dovecot]:
    dovecot.clear("info")
    yield dovecot
    dovecot.clear("info")


@pytest.fixture
def imap(mail_connection: ConnFactory, info: Dovecot, certificate: Certificate) -> ImapHook:
    conn_id = receive_connection(mail_connection, info, "imap", "ssl", certificate)
    hook = ImapHook(conn_id)
    hook.state_store = MemoryStore()  # the handed-over set, without Airflow's database
    return hook


def subjects(records: list[dict[str, object]]) -> list[object]:
    return [record["subject"] for record in records]


def test_leave_unread_changes_nothing_and_never_repeats(
    info: Dovecot, imap: ImapHook, tmp_path: Path
) -> None:
    info.deliver("info", [mail(f"Shared {i}") for i in range(5)])
    with imap:
        first = imap.receive(
            max_emails=3, after_receive="leave_unread", attachments_dir=str(tmp_path)
        )
        second = imap.receive(
            max_emails=3, after_receive="leave_unread", attachments_dir=str(tmp_path)
        )
        third = imap.receive(
            max_emails=3, after_receive="leave_unread", attachments_dir=str(tmp_path)
        )
    assert subjects(first) == ["Shared 0", "Shared 1", "Shared 2"]
    assert subjects(second) == ["Shared 3", "Shared 4"]
    assert third == []
    assert all(flags == set() for flags in info.flags_by_subject("info").values())  # not even \Seen
    stored = imap.state_store.get(
        f"mail_provider/handed_over/{imap.conn_id}/{imap.settings.account}/INBOX"
    )  # type: ignore[union-attr]
    with info.client("info") as client:
        client.select_folder("INBOX", readonly=True)
        uids = client.search("ALL")
        client.logout()
    assert stored["uids"] == f"{uids[0]}:{uids[-1]}"  # five UIDs in one range


def test_leave_unread_with_unseen_only_skips_what_a_person_read(
    info: Dovecot, imap: ImapHook, tmp_path: Path
) -> None:
    info.deliver("info", [mail("Read by Ann")], flags=("\\Seen",))
    info.deliver("info", [mail("New")])
    records = imap.receive(
        unseen_only=True, max_emails=-1, after_receive="leave_unread", attachments_dir=str(tmp_path)
    )
    assert subjects(records) == ["New"]


def test_move_with_search_moves_only_what_was_handed_over(
    info: Dovecot, imap: ImapHook, tmp_path: Path
) -> None:
    info.deliver(
        "info",
        [
            mail("Invoice 1", sender="Billing <billing@vendor.example>"),
            mail("Lunch?"),
            mail("Invoice 2", sender="Billing <billing@vendor.example>"),
        ],
    )
    with info.client("info") as client:
        client.create_folder("Processed")
        client.select_folder("INBOX")
        uids = client.search("ALL")
        client.add_flags([uids[0]], [FLAGGED])
        client.add_flags([uids[1]], [DELETED])  # a foreign \Deleted message
        client.logout()
    records = imap.receive(
        max_emails=-1,
        after_receive="move",
        move_to="Processed",
        search={"from": "billing@vendor.example"},
        attachments_dir=str(tmp_path),
    )
    assert subjects(records) == ["Invoice 1", "Invoice 2"]
    assert info.flags_by_subject("info") == {"Lunch?": {DELETED}}
    moved = info.flags_by_subject("info", "Processed")
    assert moved == {"Invoice 1": {SEEN, FLAGGED}, "Invoice 2": {SEEN}}


def test_delete_spares_foreign_deleted_mail(info: Dovecot, imap: ImapHook, tmp_path: Path) -> None:
    info.deliver("info", [mail("Ours"), mail("Foreign")])
    with info.client("info") as client:
        client.select_folder("INBOX")
        client.add_flags([client.search("ALL")[1]], [DELETED])
        client.logout()
    records = imap.receive(max_emails=1, after_receive="delete", attachments_dir=str(tmp_path))
    assert subjects(records) == ["Ours"]
    assert info.flags_by_subject("info") == {"Foreign": {DELETED}}


def test_a_missing_move_to_fails_before_any_mail_is_touched(
    info: Dovecot, imap: ImapHook, tmp_path: Path
) -> None:
    info.deliver("info", [mail("Stays")])
    with pytest.raises(MailConfigError, match="move_to 'Nowhere' does not exist"):
        imap.receive(after_receive="move", move_to="Nowhere", attachments_dir=str(tmp_path))
    assert info.flags_by_subject("info") == {"Stays": set()}
    assert imap.receive(attachments_dir=str(tmp_path))[0]["subject"] == "Stays"


def test_pop3_search_and_delete(
    info: Dovecot, mail_connection: ConnFactory, certificate: Certificate, tmp_path: Path
) -> None:
    info.deliver(
        "info",
        [mail("Invoice 1", sender="billing@vendor.example"), mail("Other"), mail("Invoice 2")],
    )
    conn_id = receive_connection(mail_connection, info, "pop3", "ssl", certificate)
    hook = Pop3Hook(conn_id, state_store=MemoryStore())
    records = hook.receive(
        max_emails=-1,
        search={"subject": "invoice"},
        after_receive="delete",
        attachments_dir=str(tmp_path),
    )
    assert subjects(records) == ["Invoice 1", "Invoice 2"]
    assert sorted(info.flags_by_subject("info")) == ["Other"]
    with pytest.raises(MailConfigError, match="'move' needs IMAP folders"):
        hook.receive(after_receive="move", move_to="Processed")
    with pytest.raises(MailConfigError, match="POP3 cannot search"):
        hook.receive(search={"body": "x"})


def test_the_trigger_carries_search_and_after_receive() -> None:
    from airflow_provider_mail.triggers.receive import ReceiveEmailTrigger

    trigger = ReceiveEmailTrigger(
        "mail_imap_default",
        search={"from": "billing@vendor.example", "since": "2026-01-01"},
        after_receive="leave_unread",
        mark_seen=False,
    )
    path, kwargs = trigger.serialize()
    again = ReceiveEmailTrigger(**kwargs)
    assert again.serialize() == (path, kwargs)
    assert again._share_key() != ReceiveEmailTrigger("mail_imap_default")._share_key()
    with pytest.raises(MailConfigError, match="search has the unknown key 'sender'"):
        ReceiveEmailTrigger("mail_imap_default", search={"sender": "x"})
    # An AssetWatcher's trigger: move needs its folder (tests/test_asset_after_receive.py).
    with pytest.raises(MailConfigError, match="after_receive='move' needs move_to"):
        ReceiveEmailTrigger("mail_imap_default", unseen_only=True, after_receive="move")
