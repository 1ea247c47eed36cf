"""A server without CONDSTORE: the warning about it is logged once per process, not per claim.

Real Dovecot with CONDSTORE left out of its capabilities (like many hosted servers).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from airflow_provider_mail.handover import imap
from airflow_provider_mail.hooks.imap import ImapHook
from devtools.certs import Certificate
from devtools.connections import ConnFactory, receive_connection
from devtools.dovecot import Dovecot
from devtools.messages import numbered
from tests.faults.test_concurrent_pollers import dovecot_without_condstore  # noqa: F401


def test_no_condstore_is_said_once_per_process(
    dovecot_without_condstore: Dovecot,  # noqa: F811  (the fixture imported above)
    mail_connection: ConnFactory,
    certificate: Certificate,
    capfd: pytest.CaptureFixture[str],
    tmp_path: Path,
    airflow_db: object,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server = dovecot_without_condstore
    server.clear("info")
    server.deliver("info", numbered(6, "Nocs"))
    conn_id = receive_connection(
        mail_connection, server, "imap", "ssl", certificate, conn_id="hostile_no_condstore"
    )
    monkeypatch.setattr(imap, "_WARNED_NO_CONDSTORE", set())
    capfd.readouterr()
    for _ in range(3):  # three claims, each over its own session
        records = ImapHook(conn_id).receive(
            unseen_only=True, max_emails=2, attachments_dir=str(tmp_path)
        )
        assert len(records) == 2
    out, err = capfd.readouterr()
    assert (out + err).count("has no CONDSTORE") == 1
