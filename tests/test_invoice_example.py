"""dags_examples/invoices_to_storage.py end to end: real Airflow (``dag.test()``), Dovecot,
and ``file://`` object storage standing in for S3."""

from __future__ import annotations

import base64
import importlib
import sys
from pathlib import Path

from imapclient import SEEN

from devtools.certs import Certificate
from devtools.connections import ConnFactory, receive_connection
from devtools.dovecot import Dovecot
from tests.airflow_runs import task_result, task_states
from tests.conftest import REPO

sys.path.insert(0, str(REPO / "dags_examples"))

PDF = b"%PDF-1.4\n" + bytes(range(256)) * 40 + b"\n%%EOF\n"


def invoice(number: int, sender: str = "Vendor Billing <billing@vendor.example>") -> bytes:
    encoded = base64.encodebytes(PDF).replace(b"\n", b"\r\n")
    return (
        (
            f"From: {sender}\r\nTo: ap@example.com\r\nSubject: Invoice {number}\r\n"
            f"Message-ID: <invoice-{number}@vendor.example>\r\n"
            "Date: Tue, 01 Dec 2026 09:00:00 +0000\r\nMIME-Version: 1.0\r\n"
            'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'
            "--b\r\nContent-Type: text/plain\r\n\r\nPlease find the invoice attached.\r\n"
            f'--b\r\nContent-Type: application/pdf; name="invoice-{number}.pdf"\r\n'
            "Content-Transfer-Encoding: base64\r\n"
            f'Content-Disposition: attachment; filename="invoice-{number}.pdf"\r\n\r\n'
        ).encode()
        + encoded
        + b"--b--\r\n"
    )


def test_invoices_are_saved_to_storage_and_moved_to_processed(
    airflow_db: object,
    mail_connection: ConnFactory,
    dovecot: Dovecot,
    certificate: Certificate,
    tmp_path: Path,
) -> None:
    dovecot.clear("info")
    with dovecot.client("info") as client:
        client.create_folder("Processed")
        client.logout()
    not_an_invoice = invoice(9, sender="Someone Else <someone@example.org>").replace(
        b"Subject: Invoice 9", b"Subject: Not from the vendor"
    )
    dovecot.deliver("info", [invoice(1), not_an_invoice, invoice(2)])
    conn_id = receive_connection(mail_connection, dovecot, "imap", "ssl", certificate)
    dag = importlib.import_module("invoices_to_storage").dag
    storage = tmp_path / "invoices"
    conf = {
        "imap_conn_id": conn_id,
        "sender": "billing@vendor.example",
        "storage_url": f"file://{storage}",
        "processed_folder": "Processed",
    }

    run = dag.test(run_conf=conf)

    assert task_states(run) == {"receive_invoices": "success", "file_invoices": "success"}
    filed = task_result(run, "file_invoices")
    assert [(f["subject"], f["filename"]) for f in filed] == [
        ("Invoice 1", "invoice-1.pdf"),
        ("Invoice 2", "invoice-2.pdf"),
    ]
    for entry in filed:
        path = Path(entry["path"].removeprefix("file://"))
        assert path.is_relative_to(storage)
        assert path.read_bytes() == PDF  # byte for byte
    moved = dovecot.flags_by_subject("info", "Processed")
    assert moved == {"Invoice 1": {SEEN}, "Invoice 2": {SEEN}}
    assert dovecot.flags_by_subject("info", "INBOX") == {"Not from the vendor": set()}
    dovecot.clear("info")
