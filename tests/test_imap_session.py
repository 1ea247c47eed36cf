"""A long-lived IMAP session (the trigger's) sees new mail at once and does not grow."""

from __future__ import annotations

import base64
from pathlib import Path

from airflow_provider_mail.hooks.imap import ImapHook
from airflow_provider_mail.mail.attachments import DirectorySink
from devtools.certs import Certificate
from devtools.connections import ConnFactory, receive_connection
from devtools.dovecot import Dovecot
from devtools.messages import numbered


def test_kept_session_finds_mail_on_the_first_poll_after_it_arrives(
    mail_connection: ConnFactory, dovecot: Dovecot, certificate: Certificate
) -> None:
    dovecot.clear("info")
    conn_id = receive_connection(mail_connection, dovecot, "imap", "ssl", certificate)
    with ImapHook(conn_id) as hook:
        assert not hook.find_new(None, unseen_only=True, max_emails=5)
        for round_ in range(1, 4):
            dovecot.deliver("info", numbered(1, f"Round {round_}"))
            assert len(hook.find_new(None, unseen_only=True, max_emails=5)) == round_


def test_unsolicited_server_replies_do_not_pile_up(
    mail_connection: ConnFactory, dovecot: Dovecot, certificate: Certificate
) -> None:
    dovecot.clear("info")
    conn_id = receive_connection(mail_connection, dovecot, "imap", "ssl", certificate)
    with ImapHook(conn_id) as hook:
        for _ in range(30):
            dovecot.deliver("info", numbered(1))
            hook.find_new(None, unseen_only=True, max_emails=5)
        kept = hook.client._imap.untagged_responses
        assert sum(len(kept.get(key, [])) for key in ("EXISTS", "RECENT")) <= 4


def test_large_messages_read_in_slices_are_byte_identical(
    mail_connection: ConnFactory, dovecot: Dovecot, certificate: Certificate, tmp_path: Path
) -> None:
    """Messages bigger than one FETCH slice arrive in pieces; the records do not change."""
    dovecot.clear("info")
    conn_id = receive_connection(mail_connection, dovecot, "imap", "ssl", certificate)
    payload = bytes(range(256)) * 300
    attachment = base64.encodebytes(payload).replace(b"\n", b"\r\n")
    big = (
        b"From: a@example.org\r\nSubject: Big\r\nMessage-ID: <big@example.org>\r\n"
        b'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="b"\r\n\r\n'
        b"--b\r\nContent-Type: text/plain\r\n\r\n" + b"some text\r\n" * 500 + b"--b\r\n"
        b"Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n"
        b'Content-Disposition: attachment; filename="data.bin"\r\n\r\n' + attachment + b"--b--\r\n"
    )
    dovecot.deliver("info", [big, *numbered(2, "Small")])
    records = {}
    for slice_size in (ImapHook.fetch_slice, 4096):
        with ImapHook(conn_id) as hook:
            hook.fetch_slice = slice_size
            claim = hook.find_new(None, unseen_only=False, max_emails=-1)
            records[slice_size] = hook.fetch(claim, DirectorySink(tmp_path / str(slice_size)))
    whole, sliced = records[ImapHook.fetch_slice], records[4096]
    assert [r["size"] for r in sliced] == [r["size"] for r in whole]
    assert sliced[0]["size"] > 4 * 4096, "the big message must really take several slices"
    assert sliced[0]["text"] == whole[0]["text"]
    assert whole[0]["text"].count("some text") == 500
    assert Path(sliced[0]["attachments"][0]["path"]).read_bytes() == payload
    assert [r["subject"] for r in sliced] == ["Big", "Small 0", "Small 1"]
