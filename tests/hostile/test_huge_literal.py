"""A server that announces a gigabyte for a message slice we asked 16 MiB of.

A hostile proxy in front of the real Dovecot rewrites the size of the literal in the
``FETCH`` answer. The client must refuse it with a sentence before reserving the memory
(imaplib would allocate the announced size in one piece), and give the messages back.
"""

from __future__ import annotations

import re
import tracemalloc
import uuid
from pathlib import Path

import pytest

from airflow_provider_mail.exceptions import MailProtocolError
from airflow_provider_mail.hooks.imap import ImapHook
from devtools.connections import ConnFactory, receive_connection
from devtools.dovecot import Dovecot
from devtools.messages import numbered
from tests.hostile.proxy import HostileProxy

ANNOUNCED = 1_000_000_000


def _announce_a_gigabyte(answer: bytes) -> bytes:
    return re.sub(rb"BODY\[\]<0> \{\d+\}", b"BODY[]<0> {%d}" % ANNOUNCED, answer, count=1)


def test_a_huge_literal_is_refused_without_reserving_it(
    dovecot: Dovecot, mail_connection: ConnFactory, tmp_path: Path
) -> None:
    dovecot.clear("info")
    dovecot.deliver("info", numbered(1, "Huge"))
    proxy = HostileProxy(
        dovecot.imap_port, when=b"BODY.PEEK[]", action="lie", rewrite=_announce_a_gigabyte
    )
    conn_id = receive_connection(
        mail_connection,
        dovecot,
        "imap",
        "none",
        None,
        conn_id=f"hostile_literal_{uuid.uuid4().hex[:8]}",
        port=proxy.port,
        timeout=2,
    )
    tracemalloc.start()
    try:
        with pytest.raises(MailProtocolError, match=rf"announced {ANNOUNCED} bytes in one answer"):
            ImapHook(conn_id).receive(unseen_only=True, attachments_dir=str(tmp_path))
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        proxy.close()
    assert proxy.attacked.is_set()
    assert peak < 64 * 1024 * 1024
    with dovecot.client("info") as client:
        client.select_folder("INBOX", readonly=True)
        assert len(client.search("UNSEEN")) == 1, "the message must be given back"
