"""A read that fails after the take must not lose the taken messages.

A hostile proxy in front of the real Dovecot lets the take through (IMAP ``UID STORE
+FLAGS (\\Seen)``) and then drops or stalls the connection inside the ``FETCH`` of the
bodies (POP3: inside ``RETR``). The messages must be unseen again afterwards: given back
over a fresh session, or, when the server stays unreachable, by the next poll.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from airflow.exceptions import TaskDeferred

from airflow_provider_mail.exceptions import MailError
from airflow_provider_mail.hooks.imap import ImapHook
from airflow_provider_mail.hooks.pop3 import Pop3Hook
from airflow_provider_mail.keyvalue import MemoryStore
from airflow_provider_mail.mail.state import Claim
from airflow_provider_mail.sensors.receive import ReceiveEmailSensor
from airflow_provider_mail.storage import TaskLedger
from devtools.connections import ConnFactory, receive_connection
from devtools.dovecot import Dovecot
from devtools.messages import numbered
from tests.hostile.proxy import Action, HostileProxy

FETCH_BODIES = b"BODY.PEEK[]"


@pytest.fixture
def inbox(dovecot: Dovecot) -> Dovecot:
    dovecot.clear("info")
    dovecot.deliver("info", numbered(3, "Taken"))
    return dovecot


Attack = Callable[..., tuple[HostileProxy, str]]


@pytest.fixture
def attack(mail_connection: ConnFactory, inbox: Dovecot) -> Iterator[Attack]:
    """``attack("imap", when=..., ...)``: a HostileProxy in front of the inbox's server
    (the other keyword arguments are the proxy's) and a connection through it."""
    started: list[HostileProxy] = []

    def start(protocol: str, **options: Any) -> tuple[HostileProxy, str]:
        port = inbox.imap_port if protocol == "imap" else inbox.pop3_port
        proxy = HostileProxy(port, **options)
        started.append(proxy)
        return proxy, _connection(mail_connection, inbox, proxy, protocol)

    yield start
    for proxy in started:
        proxy.close()


def _unseen(dovecot: Dovecot) -> int:
    with dovecot.client("info") as client:
        client.select_folder("INBOX", readonly=True)
        return len(client.search("UNSEEN"))


def _connection(
    mail_connection: ConnFactory, dovecot: Dovecot, proxy: HostileProxy, protocol: str
) -> str:
    return receive_connection(
        mail_connection,
        dovecot,
        protocol,
        "none",
        None,
        conn_id=f"hostile_{protocol}_{uuid.uuid4().hex[:8]}",
        port=proxy.port,
        timeout=2,
    )


def _owed(conn_id: str) -> list[dict[str, Any]]:
    """The give-backs owed for ``conn_id`` (Variable ``mail_provider/give_back/...``)."""
    stores = ImapHook(conn_id).handover(state_required=True).stores
    owed = stores.owed() if stores is not None else None
    assert owed is not None
    return owed.claims()


def _sensor_and_context(conn_id: str, tmp_path: Path) -> tuple[ReceiveEmailSensor, dict[str, Any]]:
    sensor = ReceiveEmailSensor(
        task_id="receive", conn_id=conn_id, unseen_only=True, attachments_dir=str(tmp_path)
    )
    ti = SimpleNamespace(
        dag_id="hostile", task_id="receive", run_id=str(uuid.uuid4()), map_index=-1
    )
    return sensor, {"ti": ti}


def _sensor_hand_over_fails(conn_id: str, tmp_path: Path) -> dict[str, Any]:
    """A sensor's hand-over of every unseen message, failing inside the read; its context."""
    sensor, context = _sensor_and_context(conn_id, tmp_path)
    with ImapHook(conn_id) as hook:
        found = hook.find_new(None, unseen_only=True, max_emails=-1)
    with pytest.raises(MailError):
        sensor._hand_over(context, found)
    return context


@pytest.mark.parametrize("action", ["drop", "stall"])
def test_sensor_gives_back_over_a_fresh_session(
    action: Action,
    inbox: Dovecot,
    attack: Attack,
    airflow_db: object,
    tmp_path: Path,
) -> None:
    proxy, conn_id = attack("imap", after=b"STORE", when=FETCH_BODIES, action=action)
    _sensor_hand_over_fails(conn_id, tmp_path)

    assert proxy.attacked.is_set()
    assert _unseen(inbox) == 3, "the taken messages must be unseen again"
    with ImapHook(conn_id) as hook:
        assert (
            len(hook.receive(unseen_only=True, max_emails=-1, attachments_dir=str(tmp_path))) == 3
        )


def test_hook_receive_gives_back_over_a_fresh_session(
    inbox: Dovecot, attack: Attack, tmp_path: Path
) -> None:
    _proxy, conn_id = attack("imap", after=b"STORE", when=FETCH_BODIES)
    with pytest.raises(MailError):
        ImapHook(conn_id).receive(unseen_only=True, attachments_dir=str(tmp_path))
    assert _unseen(inbox) == 3


def test_server_gone_after_the_take_the_next_poll_gives_back_first(
    inbox: Dovecot,
    attack: Attack,
    airflow_db: object,
    tmp_path: Path,
) -> None:
    proxy, conn_id = attack("imap", after=b"STORE", when=FETCH_BODIES, refuse_after=True)
    context = _sensor_hand_over_fails(conn_id, tmp_path)

    assert _unseen(inbox) == 0, "the server was unreachable: nothing could be given back yet"
    assert [len(Claim.from_payload(p)) for p in _owed(conn_id)] == [3]
    entry = TaskLedger.for_task("handover", context).pending()
    assert entry is not None and "reserved" not in entry

    proxy.heal()
    next_run, next_context = _sensor_and_context(conn_id, tmp_path)
    with pytest.raises(TaskDeferred):
        next_run.execute(next_context)  # gives back, then waits in the triggerer
    assert _unseen(inbox) == 3
    assert _owed(conn_id) == []
    with ImapHook(conn_id) as hook:
        assert (
            len(hook.receive(unseen_only=True, max_emails=-1, attachments_dir=str(tmp_path))) == 3
        )


@pytest.mark.parametrize("action", ["drop", "stall"])
def test_pop3_read_failure_gives_back(
    action: Action,
    inbox: Dovecot,
    attack: Attack,
    tmp_path: Path,
) -> None:
    proxy, conn_id = attack("pop3", when=b"RETR", action=action)
    store = MemoryStore()
    with pytest.raises(MailError):
        Pop3Hook(conn_id, state_store=store).receive(
            unseen_only=True, max_emails=-1, attachments_dir=str(tmp_path)
        )
    assert proxy.attacked.is_set()
    records = Pop3Hook(conn_id, state_store=store).receive(
        unseen_only=True, max_emails=-1, attachments_dir=str(tmp_path)
    )
    assert len(records) == 3
