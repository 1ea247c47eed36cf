"""Claim Lock ``server`` against servers that delete folders slowly or race with CREATE.

* Cyrus (``delete_mode: delayed``, its default) cannot delete one folder name twice within
  a second: :class:`CyrusLikeProxy` in front of the real Dovecot refuses such a ``DELETE``
  the way Cyrus does. Back-to-back claims must neither stall nor call a lock stale.
* A lock holder may release the lock between another poller's failed ``CREATE`` and its
  check whether the folder exists: that poller must try again, not tell the user to allow
  folder creation.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from airflow_provider_mail.handover.locks import LOCK_FOLDER
from airflow_provider_mail.hooks.imap import ImapHook
from devtools.connections import ConnFactory, receive_connection
from devtools.dovecot import Dovecot
from devtools.messages import numbered
from tests.hostile.cyrus_like import CyrusLikeProxy
from tests.hostile.proxy import HostileProxy


@pytest.fixture
def cyrus_like(dovecot: Dovecot) -> Iterator[CyrusLikeProxy]:
    proxy = CyrusLikeProxy(dovecot.imap_port)
    yield proxy
    proxy.close()


def _server_lock_connection(mail_connection: ConnFactory, dovecot: Dovecot, port: int) -> str:
    return receive_connection(
        mail_connection,
        dovecot,
        "imap",
        "none",
        None,
        conn_id=f"hostile_lock_{uuid.uuid4().hex[:8]}",
        port=port,
        timeout=2,
        claim_lock="server",
    )


def test_back_to_back_claims_on_a_cyrus_like_server(
    cyrus_like: CyrusLikeProxy,
    dovecot: Dovecot,
    mail_connection: ConnFactory,
    capfd: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    dovecot.clear("info")
    dovecot.deliver("info", numbered(6, "Cyrus"))
    conn_id = _server_lock_connection(mail_connection, dovecot, cyrus_like.port)
    capfd.readouterr()
    subjects = []
    with ImapHook(conn_id) as hook:  # six claims, several within one second
        for _ in range(6):
            records = hook.receive(unseen_only=True, max_emails=1, attachments_dir=str(tmp_path))
            subjects += [record["subject"] for record in records]
    out, err = capfd.readouterr()
    assert subjects == [f"Cyrus {i}" for i in range(6)]
    assert "stale claim lock" not in out + err
    assert cyrus_like.refused_deletes >= 1, "the claims never met Cyrus's delete behaviour"
    with dovecot.client("info") as client:
        assert not [f for *_, f in client.list_folders() if LOCK_FOLDER in f], "nothing left over"


def test_a_lock_released_between_create_and_check_is_taken(
    dovecot: Dovecot, mail_connection: ConnFactory, tmp_path: Path
) -> None:
    dovecot.clear("info")
    dovecot.deliver("info", numbered(1, "Race"))
    with dovecot.client("info") as holder:
        holder.create_folder(LOCK_FOLDER)  # another poller holds the lock

    def holder_releases() -> None:
        with dovecot.client("info") as client:
            client.delete_folder(LOCK_FOLDER)

    proxy = HostileProxy(dovecot.imap_port, when=b"CREATE", action="call", callback=holder_releases)
    try:
        conn_id = _server_lock_connection(mail_connection, dovecot, proxy.port)
        records = ImapHook(conn_id).receive(unseen_only=True, attachments_dir=str(tmp_path))
    finally:
        proxy.close()
    assert proxy.attacked.is_set()
    assert [record["subject"] for record in records] == ["Race 0"]
