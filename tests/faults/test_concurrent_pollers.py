"""Several pollers on one mailbox never take the same message.

Real processes race on real Dovecot: pollers of one host (the host lock serialises their
claims), pollers of "different hosts" (each child gets a lock directory of its own, so
only the server lock folder keeps them apart), and a server without CONDSTORE.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from imapclient.exceptions import IMAPClientError

from airflow_provider_mail.exceptions import MailProtocolError
from airflow_provider_mail.handover.locks import _LOCK_FOLDERS, LOCK_FOLDER
from airflow_provider_mail.hooks.imap import ImapHook
from airflow_provider_mail.hooks.pop3 import Pop3Hook
from airflow_provider_mail.locks import LOCK_DIR_VARIABLE
from airflow_provider_mail.mail.state import Claim
from airflow_provider_mail.triggers.receive import ReceiveEmailTrigger
from devtools.certs import Certificate
from devtools.connections import USERS, ConnFactory, receive_connection
from devtools.dovecot import Dovecot
from devtools.messages import numbered

POLLERS = 4
MESSAGES = 120
#: Dovecot's own capability list without CONDSTORE/QRESYNC: a server with no atomic claim.
WITHOUT_CONDSTORE = (
    "imap_capability = IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE SORT LITERAL+ "
    "UIDPLUS MOVE NAMESPACE CHILDREN UNSELECT"
)


@pytest.fixture(scope="module")
def dovecot_without_condstore(workdir: Path, certificate: Certificate) -> Iterator[Dovecot]:
    """A Dovecot that does not advertise CONDSTORE (like many hosted servers)."""
    server = Dovecot(
        workdir / "dovecot-no-condstore",
        certificate,
        users=dict(USERS),
        extra_config=WITHOUT_CONDSTORE,
    ).start()
    yield server
    server.stop()


def _poll_until_empty(
    conn_id: str, lock_dir: str | None, ready: Any, start: Any, results: Any
) -> None:
    if lock_dir is not None:
        os.environ[LOCK_DIR_VARIABLE] = lock_dir  # a host of its own
    taken: list[str] = []
    with ImapHook(conn_id) as hook:
        ready.put(True)  # connected and logged in: all pollers start polling together
        start.wait()
        while True:
            records = hook.receive(unseen_only=True, max_emails=3)
            taken += [str(record["message_id"]) for record in records]
            # A poll whose claim others won is not the end: stop once nothing is unseen.
            if not records and not hook.find_new(None, unseen_only=True, max_emails=1):
                break
    results.put(taken)


def _race(target: Any, worker_args: list[tuple[Any, ...]]) -> list[list[str]]:
    """Start one ``target(*args, ready, start, results)`` per entry at once; what each took."""
    context = multiprocessing.get_context("fork")
    ready, start, results = context.Queue(), context.Event(), context.Queue()
    workers = [
        context.Process(target=target, args=(*args, ready, start, results)) for args in worker_args
    ]
    for worker in workers:
        worker.start()
    for _ in workers:
        ready.get(timeout=60)
    start.set()
    taken = [results.get(timeout=300) for _ in workers]
    for worker in workers:
        worker.join(timeout=30)
        assert worker.exitcode == 0
    return taken


def _imap_race(conn_id: str, lock_dirs: list[str | None]) -> list[list[str]]:
    return _race(_poll_until_empty, [(conn_id, lock_dir) for lock_dir in lock_dirs])


def _assert_split_exactly_once(taken: list[list[str]], messages: int = MESSAGES) -> None:
    counts = Counter(message_id for batch in taken for message_id in batch)
    assert [m for m, n in counts.items() if n > 1] == []
    assert set(counts) == {f"<race-{i}@example.com>" for i in range(messages)}
    assert sum(1 for batch in taken if batch) >= 2, "the pollers did not actually compete"


def _folders(conn_id: str) -> list[str]:
    with ImapHook(conn_id) as hook:
        return [name for _flags, _delimiter, name in hook.get_conn().list_folders()]


def test_pollers_of_one_host_split_the_mailbox_without_duplicates(
    mail_connection: ConnFactory, dovecot: Dovecot, certificate: Certificate
) -> None:
    dovecot.clear("info")
    conn_id = receive_connection(mail_connection, dovecot, "imap", "ssl", certificate)
    dovecot.deliver("info", numbered(MESSAGES, "Race"))
    _assert_split_exactly_once(_imap_race(conn_id, [None] * POLLERS))


def test_pollers_of_several_hosts_split_the_mailbox_with_the_server_lock(
    mail_connection: ConnFactory, dovecot: Dovecot, certificate: Certificate, tmp_path: Path
) -> None:
    dovecot.clear("info")
    conn_id = receive_connection(
        mail_connection, dovecot, "imap", "ssl", certificate, claim_lock="server"
    )
    dovecot.deliver("info", numbered(MESSAGES, "Race"))
    hosts = [str(tmp_path / f"host-{n}") for n in range(POLLERS)]
    _assert_split_exactly_once(_imap_race(conn_id, list(hosts)))
    assert LOCK_FOLDER not in _folders(conn_id)


def test_pollers_split_the_mailbox_on_a_server_without_condstore(
    mail_connection: ConnFactory,
    dovecot_without_condstore: Dovecot,
    certificate: Certificate,
    tmp_path: Path,
) -> None:
    server = dovecot_without_condstore
    one_host = receive_connection(mail_connection, server, "imap", "ssl", certificate)
    with ImapHook(one_host) as hook:
        assert not hook.get_conn().has_capability("CONDSTORE")
    server.clear("info")
    server.deliver("info", numbered(MESSAGES, "Race"))
    _assert_split_exactly_once(_imap_race(one_host, [None] * POLLERS))

    several_hosts = receive_connection(
        mail_connection,
        server,
        "imap",
        "ssl",
        certificate,
        conn_id="no_condstore_server_lock",
        claim_lock="server",
    )
    server.clear("info")
    server.deliver("info", numbered(MESSAGES, "Race"))
    hosts = [str(tmp_path / f"host-{n}") for n in range(POLLERS)]
    _assert_split_exactly_once(_imap_race(several_hosts, list(hosts)))


def _server_locked_inbox(
    mail_connection: ConnFactory,
    dovecot: Dovecot,
    certificate: Certificate,
    messages: int,
    **settings: Any,
) -> str:
    """A connection with Claim Lock ``server`` to an inbox holding ``messages`` new ones."""
    dovecot.clear("info")
    conn_id = receive_connection(
        mail_connection, dovecot, "imap", "ssl", certificate, claim_lock="server", **settings
    )
    dovecot.deliver("info", numbered(messages, "Race"))
    return conn_id


def test_a_lock_folder_left_by_a_dead_poller_is_removed_after_the_timeout(
    mail_connection: ConnFactory, dovecot: Dovecot, certificate: Certificate
) -> None:
    conn_id = _server_locked_inbox(mail_connection, dovecot, certificate, 2, timeout=2)
    with ImapHook(conn_id) as hook:
        hook.get_conn().create_folder(LOCK_FOLDER)  # its holder was killed
        started = time.monotonic()
        records = hook.receive(unseen_only=True, max_emails=-1)
        waited = time.monotonic() - started
    assert [r["message_id"] for r in records] == ["<race-0@example.com>", "<race-1@example.com>"]
    assert waited >= 2  # nobody broke a lock that could still be held
    assert LOCK_FOLDER not in _folders(conn_id)


def test_a_server_refusing_the_lock_folder_gets_one_clear_sentence(
    mail_connection: ConnFactory,
    dovecot: Dovecot,
    certificate: Certificate,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    conn_id = _server_locked_inbox(mail_connection, dovecot, certificate, 1)
    with ImapHook(conn_id) as hook:
        monkeypatch.setitem(_LOCK_FOLDERS, hook.settings.account, "no/such/parent\\bad")
        with pytest.raises(MailProtocolError) as raised:
            hook.receive(unseen_only=True)
    message = str(raised.value)
    assert message.startswith(f"localhost:{dovecot.imaps_port} refused to create the claim lock")
    assert message.endswith("or set the connection's Claim Lock to host.")
    assert dovecot.users["info"] not in message
    # Nothing was taken: the message is still there for the next poll.
    with ImapHook(conn_id) as hook:
        assert len(hook.find_new(None, unseen_only=True, max_emails=-1)) == 1


def test_claim_refuses_messages_another_poller_marked_meanwhile(
    mail_connection: ConnFactory, dovecot: Dovecot, certificate: Certificate
) -> None:
    dovecot.clear("info")
    conn_id = receive_connection(mail_connection, dovecot, "imap", "ssl", certificate)
    dovecot.deliver("info", numbered(4, "Claim"))
    with ImapHook(conn_id) as first, ImapHook(conn_id) as second:
        seen_by_first = first.find_new(None, unseen_only=True, max_emails=-1)
        seen_by_second = second.find_new(None, unseen_only=True, max_emails=-1)
        assert seen_by_first == seen_by_second and len(seen_by_first) == 4
        part = Claim("imap", "INBOX", seen_by_second.uidvalidity, uids=seen_by_second.uids[:2])
        assert second.mailbox.take(part) == part
        owned = first.mailbox.take(seen_by_first)
        assert owned.uids == seen_by_first.uids[2:]


def test_trigger_redelivers_a_claim_whose_event_never_went_out(
    mail_connection: ConnFactory, dovecot: Dovecot, certificate: Certificate
) -> None:
    """A triggerer killed between claiming and emitting: the next trigger emits it."""
    dovecot.clear("info")
    conn_id = receive_connection(mail_connection, dovecot, "imap", "ssl", certificate)
    dovecot.deliver("info", numbered(3, "Pending"))
    with ImapHook(conn_id) as hook:
        claim = hook.mailbox.take(hook.find_new(None, True, -1), pending=True)
    assert len(claim) == 3  # claimed and marked seen, then "the triggerer died"

    trigger = ReceiveEmailTrigger(conn_id, unseen_only=True, delay=0.1)

    async def first_event() -> dict[str, Any]:
        events = trigger.run()
        try:
            event = await asyncio.wait_for(events.__anext__(), timeout=20)
        finally:
            await events.aclose()
        return dict(event.payload)

    payload = asyncio.run(first_event())
    assert payload["uids"] == list(claim.uids)


def _pop3_poll_until_empty(conn_id: str, ready: Any, start: Any, results: Any) -> None:
    taken: list[str] = []
    ready.put(True)
    start.wait()
    while True:
        # A POP3 session sees the mailbox as it was at login: one session per poll.
        with Pop3Hook(conn_id) as hook:
            records = hook.receive(unseen_only=True, max_emails=3)
            left = records or hook.find_new(None, unseen_only=True, max_emails=1)
        taken += [str(record["message_id"]) for record in records]
        if not left:
            break
    results.put(taken)


def test_pop3_pollers_of_one_host_split_the_mailbox_without_duplicates(
    mail_connection: ConnFactory, dovecot: Dovecot, certificate: Certificate, airflow_db: object
) -> None:
    """POP3 has no flags: the seen Variable is the claim, updated under the host lock."""
    dovecot.clear("support")
    conn_id = receive_connection(
        mail_connection, dovecot, "pop3", "ssl", certificate, user="support", conn_id="pop3_race"
    )
    with Pop3Hook(conn_id) as hook:
        hook.state_store.set(hook.seen_key, [])
    dovecot.deliver("support", numbered(MESSAGES // 2, "Race"))
    taken = _race(_pop3_poll_until_empty, [(conn_id,)] * POLLERS)
    _assert_split_exactly_once(taken, MESSAGES // 2)


def test_a_lock_folder_that_keeps_coming_back_ends_in_one_sentence(
    mail_connection: ConnFactory, dovecot: Dovecot, certificate: Certificate
) -> None:
    """A stuck holder that re-creates the lock at once: the claim gives up, takes nothing."""
    conn_id = _server_locked_inbox(mail_connection, dovecot, certificate, 1, timeout=1)
    holding, stop = threading.Event(), threading.Event()

    def stuck_holder() -> None:
        with ImapHook(conn_id) as holder:
            client = holder.get_conn()
            while not stop.is_set():  # back within a round trip of every removal
                with contextlib.suppress(IMAPClientError):
                    client.create_folder(LOCK_FOLDER)
                holding.set()
            client.delete_folder(LOCK_FOLDER)

    holder = threading.Thread(target=stuck_holder)
    holder.start()
    assert holding.wait(30)
    try:
        with ImapHook(conn_id) as hook:
            with pytest.raises(MailProtocolError, match=r"stayed in place for \d+ seconds"):
                hook.receive(unseen_only=True)
            assert len(hook.find_new(None, unseen_only=True, max_emails=-1)) == 1
    finally:
        stop.set()
        holder.join(30)


def test_pop3_pending_ids_of_a_dead_trigger_count_as_seen_once_found(
    mail_connection: ConnFactory, dovecot: Dovecot, certificate: Certificate, airflow_db: object
) -> None:
    """Killed between writing them as pending and as seen: re-emitted, never polled as new."""
    dovecot.clear("support")
    conn_id = receive_connection(
        mail_connection, dovecot, "pop3", "ssl", certificate, user="support", conn_id="pop3_dead"
    )
    dovecot.deliver("support", numbered(2, "Pending"))
    with Pop3Hook(conn_id) as hook:
        hook.state_store.set(hook.seen_key, [])
        first = hook.find_new(None, unseen_only=True, max_emails=1)
        hook.state_store.set(hook.pending_key, list(first.uidls))  # then it died
    with Pop3Hook(conn_id) as hook:
        assert hook.mailbox.find_pending(None) == first
    with Pop3Hook(conn_id) as hook:
        assert set(hook.find_new(None, unseen_only=True, max_emails=-1).uidls).isdisjoint(
            first.uidls
        )
