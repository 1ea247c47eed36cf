"""``ImapHook.receive`` after a folder was deleted and recreated (restored from a backup).

The restored messages have new UIDs and no ``\\Seen`` flag; the hook path must not hand
them over again, exactly like the sensor (same Message-ID check). Real Dovecot.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path

from airflow_provider_mail.hooks.imap import ImapHook
from devtools.certs import Certificate
from devtools.connections import ConnFactory, receive_connection
from devtools.dovecot import Dovecot
from devtools.messages import numbered


def test_hook_receive_neither_repeats_nor_skips_after_recreation(
    airflow_db: object,
    mail_connection: ConnFactory,
    dovecot: Dovecot,
    certificate: Certificate,
    tmp_path: Path,
) -> None:
    dovecot.clear("info")
    conn_id = receive_connection(
        mail_connection,
        dovecot,
        "imap",
        "ssl",
        certificate,
        conn_id=f"recreate_{uuid.uuid4().hex[:8]}",
    )
    originals = numbered(4, "Kept")
    dovecot.deliver("info", originals, folder="Recreate")

    def subjects() -> list[str]:
        records = ImapHook(conn_id).receive(
            folder="Recreate", unseen_only=True, max_emails=-1, attachments_dir=str(tmp_path)
        )
        return [record["subject"] for record in records]

    assert subjects() == [f"Kept {i}" for i in range(4)]
    time.sleep(1.1)  # Dovecot derives UIDVALIDITY from the clock
    with dovecot.client("info") as client:
        client.delete_folder("Recreate")
    dovecot.deliver("info", [*originals, *numbered(2, "New")], folder="Recreate")

    assert subjects() == ["New 0", "New 1"]
    assert subjects() == []
