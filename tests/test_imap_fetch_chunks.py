"""A backlog is fetched in chunks bounded by size, and every command carries a short UID set:
every message once, oldest first, taken by one poller only."""

from __future__ import annotations

from pathlib import Path

import pytest

from airflow_provider_mail.exceptions import MailStorageError
from airflow_provider_mail.hooks import imap
from airflow_provider_mail.hooks.imap import ImapHook
from airflow_provider_mail.mail import uid_ranges
from airflow_provider_mail.mail.attachments import AttachmentSink, DirectorySink
from airflow_provider_mail.mail.state import Claim
from airflow_provider_mail.mail.uid_ranges import sequence_sets
from devtools.certs import Certificate
from devtools.connections import ConnFactory, receive_connection
from devtools.dovecot import Dovecot
from devtools.messages import numbered


def backlog(
    mail_connection: ConnFactory,
    dovecot: Dovecot,
    certificate: Certificate,
    monkeypatch: pytest.MonkeyPatch,
    subject: str,
    count: int,
    chunk: int,
    chunk_messages: int,
) -> str:
    """``count`` numbered messages in an emptied inbox, fetched at most ``chunk`` at a
    time and about ``chunk_messages`` by size; the IMAP connection's id."""
    dovecot.clear("info")
    conn_id = receive_connection(mail_connection, dovecot, "imap", "ssl", certificate)
    dovecot.deliver("info", numbered(count, subject))
    monkeypatch.setattr(imap, "FETCH_CHUNK", chunk)
    monkeypatch.setattr(imap, "FETCH_CHUNK_BYTES", chunk_messages * len(numbered(1, subject)[0]))
    return conn_id


def test_a_backlog_arrives_whole_in_size_bounded_chunks(
    mail_connection: ConnFactory,
    dovecot: Dovecot,
    certificate: Certificate,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Room for about three of these messages per chunk.
    conn_id = backlog(mail_connection, dovecot, certificate, monkeypatch, "Backlog", 30, 4, 3)
    commands: list[tuple[int, ...]] = []
    with ImapHook(conn_id) as hook:
        claim = hook.find_new(None, unseen_only=False, max_emails=-1)
        real_fetch = hook.uid_fetch

        def fetch(uids: tuple[int, ...], items: list[bytes]) -> dict[int, object]:
            commands.append(uids)
            return real_fetch(uids, items)

        monkeypatch.setattr(hook, "uid_fetch", fetch)
        records = hook.fetch(claim, DirectorySink(tmp_path))
    assert [r["subject"] for r in records] == [f"Backlog {n}" for n in range(30)]
    assert [r["uid"] for r in records] == list(claim.uids)
    # One size query, then chunks of about three messages, each a compact UID range.
    assert len(commands) >= 1 + 30 // 4
    assert all("," not in "".join(sequence_sets(command)) for command in commands)


def test_a_backlog_longer_than_the_servers_command_line_drains_once(
    mail_connection: ConnFactory, dovecot: Dovecot, certificate: Certificate, tmp_path: Path
) -> None:
    """14,000 unseen UIDs listed one by one are an 80 KB command, and Dovecot refuses an
    argument over 64 KiB ("Too long argument"): every poll failed and the backlog never
    drained. Every command now carries at most ``MAX_SET_TEXT`` characters of UIDs, here
    2,000 scattered unseen messages (two sets) and 12,000 in a row."""
    dovecot.clear("info")
    conn_id = receive_connection(mail_connection, dovecot, "imap", "ssl", certificate)
    messages = [
        (
            f"Subject: Backlog {n}\r\nMessage-ID: <b-{n}@example.com>\r\n\r\n{n}\r\n".encode(),
            n < 4000 and n % 2 == 1,
        )
        for n in range(16_000)
    ]
    dovecot.write_maildir("info", messages)
    unseen = {f"Backlog {n}" for n, (_, seen) in enumerate(messages) if not seen}
    try:
        with ImapHook(conn_id) as hook:
            records = hook.receive(unseen_only=True, max_emails=-1, attachments_dir=str(tmp_path))
            again = hook.receive(unseen_only=True, max_emails=-1, attachments_dir=str(tmp_path))
        assert len(records) == len(unseen) == 14_000
        assert {record["subject"] for record in records} == unseen
        assert [r["uid"] for r in records] == sorted(r["uid"] for r in records)  # oldest first
        assert again == []  # every one taken and marked seen, in short commands too
    finally:
        dovecot.clear("info")


def test_a_failed_record_waits_for_the_chunk_read_ahead_before_the_session_is_reused(
    mail_connection: ConnFactory,
    dovecot: Dovecot,
    certificate: Certificate,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The next chunk is read while a record fails: the session stays usable afterwards
    (to give the messages back), and a second read gets every message."""
    conn_id = backlog(mail_connection, dovecot, certificate, monkeypatch, "Ahead", 12, 2, 2)

    with ImapHook(conn_id) as hook:
        claim = hook.find_new(None, unseen_only=False, max_emails=-1)
        real_build = hook.build
        built: list[int] = []

        def build(raw: bytes, claim_: Claim, attachments: AttachmentSink, **ids: int) -> object:
            built.append(ids["uid"])
            if len(built) == 3:  # the first message of the second chunk; the third is on the way
                raise MailStorageError("An attachment could not be written (disk full).")
            return real_build(raw, claim_, attachments, **ids)

        monkeypatch.setattr(hook, "build", build)
        with pytest.raises(MailStorageError):
            hook.fetch(claim, DirectorySink(tmp_path))
        monkeypatch.setattr(hook, "build", real_build)
        hook.client.noop()  # the session's stream is not mid-answer
        records = hook.fetch(claim, DirectorySink(tmp_path))
    assert [r["subject"] for r in records] == [f"Ahead {n}" for n in range(12)]


def test_a_take_in_several_sets_refuses_what_another_poller_took_after_its_set_was_read(
    mail_connection: ConnFactory,
    dovecot: Dovecot,
    certificate: Certificate,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Each set's conditional STORE uses the MODSEQ its own FETCH saw. Here another poller
    takes the first set's message after that set was read, and a message of the last set
    changes after that (a higher MODSEQ): one limit for all sets, the highest, would let
    both pollers own the first message."""
    dovecot.clear("info")
    conn_id = receive_connection(mail_connection, dovecot, "imap", "ssl", certificate)
    dovecot.deliver("info", numbered(5, "Race"))
    monkeypatch.setattr(uid_ranges, "MAX_SET_TEXT", 1)  # one UID per command
    with ImapHook(conn_id) as hook, ImapHook(conn_id) as other:
        found = hook.find_new(None, unseen_only=True, max_emails=-1)
        claim = Claim("imap", "INBOX", found.uidvalidity, uids=found.uids[0::2])  # 1, 3, 5
        first, last = claim.uids[0], claim.uids[-1]
        read = hook.uid_fetch_set

        def then_another_poller_acts(uid_set: str, items: list[bytes]) -> dict[int, object]:
            answer = read(uid_set, items)
            if uid_set == str(first):
                other.uidvalidity("INBOX")
                other.client.add_flags([first], [b"\\Seen"], silent=True)  # it took the first
                other.client.add_flags([last], [b"$Later"], silent=True)  # a newer change
            return answer

        monkeypatch.setattr(hook, "uid_fetch_set", then_another_poller_acts)
        owned = hook.mailbox.take(claim)
    assert owned.uids == claim.uids[1:]  # the first is the other poller's alone
