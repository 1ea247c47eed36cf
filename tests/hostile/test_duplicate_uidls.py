"""A POP3 server that reports the same unique id (UIDL) for two messages.

Taken as it is, one of the two would be delivered twice and the other never. Each must
be delivered exactly once, and stay delivered.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from airflow_provider_mail.hooks.pop3 import Pop3Hook
from airflow_provider_mail.keyvalue import MemoryStore
from airflow_provider_mail.mail.state import distinct_uidls
from devtools.connections import ConnFactory
from tests.hostile.pop3_server import HostilePop3


def _message(name: str) -> bytes:
    return (
        f"From: a@example.org\r\nSubject: {name}\r\nMessage-ID: <{name}@example.org>\r\n"
        f"\r\nBody of {name}.\r\n"
    ).encode()


def test_unique_ids_are_kept_and_duplicates_get_a_content_digest() -> None:
    digests = {1: "aaa", 2: "bbb", 3: "ccc", 4: "bbb", 5: "eee"}
    listing = [(1, "x"), (2, "dup"), (3, "u"), (4, "dup"), (5, "")]
    assert distinct_uidls(listing, digests.__getitem__) == [
        (1, "x"),
        (2, "dup~bbb"),
        (3, "u"),
        (4, "dup~bbb~2"),  # identical content too: still two messages
        (5, "~eee"),  # an empty id is no id
    ]
    assert distinct_uidls([(1, "a"), (2, "b")], lambda _n: pytest.fail("no digest needed")) == [
        (1, "a"),
        (2, "b"),
    ]


@pytest.fixture
def server() -> Iterator[HostilePop3]:
    pop3 = HostilePop3(
        [("dup", _message("first")), ("dup", _message("second")), ("u", _message("third"))]
    )
    yield pop3
    pop3.close()


def test_each_message_of_a_duplicated_uidl_is_delivered_once(
    server: HostilePop3, mail_connection: ConnFactory, tmp_path: Path
) -> None:
    conn_id = mail_connection(
        f"hostile_pop3_{uuid.uuid4().hex[:8]}",
        "mail_pop3",
        host="127.0.0.1",
        port=server.port,
        login="info",
        password="x",
        security="none",
        timeout=5,
    )
    store = MemoryStore()

    def poll() -> list[str]:
        records = Pop3Hook(conn_id, state_store=store).receive(
            unseen_only=True, max_emails=-1, attachments_dir=str(tmp_path)
        )
        return sorted(record["subject"] for record in records)

    assert poll() == ["first", "second", "third"]
    assert poll() == []
    server.messages.append(("dup", _message("fourth")))
    assert poll() == ["fourth"]
    assert poll() == []
