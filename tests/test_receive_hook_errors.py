"""Receive hooks when something goes wrong: nothing is lost, the error is one sentence."""

from __future__ import annotations

from pathlib import Path

import pytest

from airflow_provider_mail.exceptions import MailConfigError, MailStorageError
from airflow_provider_mail.hooks.imap import ImapHook
from airflow_provider_mail.hooks.pop3 import Pop3Hook
from airflow_provider_mail.keyvalue import MemoryStore
from airflow_provider_mail.triggers.receive import ReceiveEmailTrigger
from devtools.certs import Certificate
from devtools.connections import ConnFactory, receive_connection
from devtools.dovecot import Dovecot
from devtools.messages import numbered

WITH_ATTACHMENT = (
    b"From: a@example.org\r\nSubject: With file\r\nMessage-ID: <file@example.org>\r\n"
    b'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="b"\r\n\r\n'
    b"--b\r\nContent-Type: text/plain\r\n\r\nsee file\r\n"
    b'--b\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; filename="a.pdf"\r\n'
    b"Content-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK\r\n--b--\r\n"
)


def test_unwritable_attachments_dir_fails_clearly_and_loses_nothing(
    mail_connection: ConnFactory, dovecot: Dovecot, certificate: Certificate, tmp_path: Path
) -> None:
    dovecot.clear("info")
    conn_id = receive_connection(mail_connection, dovecot, "imap", "ssl", certificate)
    dovecot.deliver("info", [WITH_ATTACHMENT])
    not_a_directory = tmp_path / "file"
    not_a_directory.write_text("x")
    with pytest.raises(
        MailStorageError, match=r"could not be written .*check that attachments_dir"
    ):
        ImapHook(conn_id).receive(unseen_only=True, attachments_dir=str(not_a_directory))
    with dovecot.client("info") as client:
        client.select_folder("INBOX", readonly=True)
        assert len(client.search("UNSEEN")) == 1, "the failed poll must give the message back"

    [record] = ImapHook(conn_id).receive(unseen_only=True, attachments_dir=str(tmp_path / "ok"))
    assert Path(record["attachments"][0]["path"]).read_bytes().startswith(b"%PDF")


def test_receive_without_with_closes_its_session(
    mail_connection: ConnFactory, dovecot: Dovecot, certificate: Certificate
) -> None:
    dovecot.clear("info")
    conn_id = receive_connection(mail_connection, dovecot, "pop3", "ssl", certificate)
    dovecot.deliver("info", numbered(1))
    hook = Pop3Hook(conn_id, state_store=MemoryStore())
    assert len(hook.receive(unseen_only=True)) == 1
    assert hook._client is None, "a POP3 session left open locks the mailbox"


def test_non_ascii_password_is_a_clear_sentence_without_the_password(
    mail_connection: ConnFactory, dovecot: Dovecot, certificate: Certificate
) -> None:
    conn_id = receive_connection(
        mail_connection, dovecot, "imap", "ssl", certificate, password="pässwörd"
    )
    ok, message = ImapHook(conn_id).test_connection()
    assert not ok
    assert "contains characters outside ASCII" in message
    assert "ä" not in message and "pässwörd" not in message


def test_asset_watcher_trigger_needs_unseen_only() -> None:
    with pytest.raises(MailConfigError, match="needs unseen_only=True"):
        ReceiveEmailTrigger("mail_imap_default", mark_seen=True)
    assert ReceiveEmailTrigger("mail_imap_default", mark_seen=False).unseen_only is False


def test_trigger_with_the_specs_defaults_only_looks() -> None:
    """SPEC: ReceiveEmailTrigger(conn_id, folder=None, unseen_only=False, max_emails=5, delay=5)."""
    trigger = ReceiveEmailTrigger("mail_imap_default")
    assert (trigger.folder, trigger.unseen_only, trigger.max_emails, trigger.delay) == (
        None,
        False,
        5,
        5.0,
    )
    assert trigger.mark_seen is False
    assert ReceiveEmailTrigger("mail_imap_default", unseen_only=True).mark_seen is True
