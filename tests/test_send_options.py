"""SendEmailOperator's attachments, threading, headers and auto_submitted, over real aiosmtpd.

The forwarding test receives a message from Dovecot with the provider's own ImapHook and
sends its attachments on: what the SMTP server receives must be the very bytes Dovecot had.
"""

from __future__ import annotations

import email
import email.policy
import hashlib
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_mail.exceptions import MailConfigError, MailSendError
from airflow_provider_mail.hooks.imap import ImapHook
from airflow_provider_mail.mail.attachments import default_attachments_dir
from airflow_provider_mail.operators.send import SendEmailOperator
from devtools.certs import Certificate
from devtools.connections import ConnFactory, receive_connection
from devtools.dovecot import Dovecot
from devtools.smtp import SmtpServers
from tests.fixtures_smtp import SmtpConnFactory

CONTEXT: Any = {}
# Bytes a text encoding would change: NUL, bare CR and LF, a lone dot line, 8-bit, no EOL.
BLOB = bytes(range(256)) * 64 + b"\r\n.\r\n\n.\n\r\r\x00" + b"\xff" * 999


def operator(conn_id: str, **kwargs: Any) -> SendEmailOperator:
    kwargs.setdefault("from_email", "Support <support@example.com>")
    return SendEmailOperator(task_id="send", conn_id=conn_id, **kwargs)


def attachments_of(message: EmailMessage) -> dict[str | None, bytes]:
    return {
        part.get_filename(): part.get_payload(decode=True) for part in message.iter_attachments()
    }


@pytest.fixture
def conn_id(smtp: SmtpServers, smtp_connection: SmtpConnFactory) -> str:
    return smtp_connection(smtp.starttls)


@pytest.fixture
def received_dir() -> Iterator[Path]:
    """A folder under the default attachments root (where consumed data may attach from)."""
    directory = Path(default_attachments_dir("test_send_options", hashlib.md5().hexdigest()))
    directory.mkdir(parents=True, exist_ok=True)
    yield directory
    for path in sorted(directory.rglob("*"), reverse=True):
        path.rmdir() if path.is_dir() else path.unlink()


def test_operator_attachments_from_a_path_and_a_file_url(
    smtp: SmtpServers, conn_id: str, tmp_path: Path
) -> None:
    (tmp_path / "blob.bin").write_bytes(BLOB)
    (tmp_path / "report.csv").write_text("a,b\n1,2\n")
    results = operator(
        conn_id,
        to="bob@example.org",
        subject="Files",
        text="See attached.",
        attachments=[str(tmp_path / "blob.bin"), f"file://{tmp_path}/report.csv"],
    ).execute(CONTEXT)
    [received] = smtp.starttls.messages
    message = received.parsed()
    assert attachments_of(message) == {"blob.bin": BLOB, "report.csv": b"a,b\n1,2\n"}
    [csv] = [p for p in message.iter_attachments() if p.get_filename() == "report.csv"]
    assert csv.get_content_type() == "text/csv"
    assert set(results[0]) == {"message_id", "from", "to", "subject"}


def test_object_storage_attachments_are_read_through_object_storage_path(
    smtp: SmtpServers, conn_id: str
) -> None:
    from airflow.sdk import ObjectStoragePath
    from airflow.sdk.io import attach
    from fsspec.implementations.memory import MemoryFileSystem

    attach("memory", fs=MemoryFileSystem())
    remote = ObjectStoragePath("memory://bucket/out/blob.bin")
    remote.parent.mkdir(parents=True, exist_ok=True)
    remote.write_bytes(BLOB)
    operator(
        conn_id, to="bob@example.org", subject="Remote", attachments="memory://bucket/out/blob.bin"
    ).execute(CONTEXT)
    [received] = smtp.starttls.messages
    assert attachments_of(received.parsed()) == {"blob.bin": BLOB}


def test_received_attachments_are_forwarded_byte_for_byte(
    smtp: SmtpServers,
    conn_id: str,
    dovecot: Dovecot,
    mail_connection: ConnFactory,
    certificate: Certificate,
    received_dir: Path,
    airflow_db: Path,
) -> None:
    original = EmailMessage()
    original["From"] = "Jane <jane@example.org>"
    original["To"] = "support@example.com"
    original["Subject"] = "Invoice"
    original["Message-ID"] = "<invoice-1@example.org>"
    original.set_content("Invoice attached.")
    original.add_attachment(BLOB, "application", "pdf", filename="Rechnung März.pdf")
    original.add_attachment(b"plain\r\ntext\n", "text", "plain", filename="notes.txt")
    dovecot.clear("info")
    dovecot.deliver("info", [original.as_bytes()])
    imap = receive_connection(mail_connection, dovecot, "imap", "ssl", certificate)
    [record] = ImapHook(imap).receive(attachments_dir=str(received_dir))
    assert [a["size"] for a in record["attachments"]] == [len(BLOB), len(b"plain\r\ntext\n")]

    # The record itself as consumed data (priority: consumed data), and a mapper's text.
    operator(
        conn_id,
        to="archive@example.com",
        data=[{"subject": "Fwd: Invoice", "attachments": record["attachments"]}],
        parameter_priority="consumed_data",
    ).execute(CONTEXT)
    operator(
        conn_id,
        to="archive@example.com",
        data=[{"subject": "Fwd: Invoice", "attachments": str(record["attachments"])}],
        parameter_priority="consumed_data",
    ).execute(CONTEXT)
    for received in smtp.starttls.messages:
        assert attachments_of(received.parsed()) == {
            "Rechnung März.pdf": BLOB,
            "notes.txt": b"plain\r\ntext\n",
        }


def test_data_cannot_attach_files_outside_the_allowed_folders(
    smtp: SmtpServers, conn_id: str, tmp_path: Path, received_dir: Path
) -> None:
    (received_dir / "fine.txt").write_text("fine")
    secret = tmp_path / "secret.txt"
    secret.write_text("the key")
    data = [
        {"to": "a@example.org", "attachments": [str(received_dir / "fine.txt")]},
        {"to": "b@example.org", "attachments": [{"path": str(secret), "filename": "x.txt"}]},
    ]
    with pytest.raises(MailSendError, match=r"Item 1 attaches .* outside the folders"):
        operator(conn_id, data=data, parameter_priority="consumed_data").execute(CONTEXT)
    assert smtp.starttls.messages == []  # item 0 was fine, but nothing goes out
    # The DAG may allow the folder; or attach the file itself.
    operator(
        conn_id, data=data, parameter_priority="consumed_data", attachment_dirs=[str(tmp_path)]
    ).execute(CONTEXT)
    operator(conn_id, to="c@example.org", attachments=str(secret)).execute(CONTEXT)
    assert len(smtp.starttls.messages) == 3


def test_too_large_attachments_send_nothing(
    smtp: SmtpServers, conn_id: str, tmp_path: Path
) -> None:
    (tmp_path / "small").write_bytes(b"x" * 100)
    (tmp_path / "big").write_bytes(b"x" * 2000)
    data = [{"attachments": str(tmp_path / "small")}, {"attachments": str(tmp_path / "big")}]
    send = operator(
        conn_id,
        to="a@example.org",
        data=data,
        attachment_dirs=str(tmp_path),
        max_attachment_bytes=1000,
        parameter_priority="consumed_data",
    )
    with pytest.raises(MailSendError, match="Item 1 has attachments of more than"):
        send.execute(CONTEXT)
    assert smtp.starttls.messages == []


def test_a_threaded_automatic_reply_with_extra_headers(smtp: SmtpServers, conn_id: str) -> None:
    record = {
        "from": "Bob <bob@example.org>",
        "message_id": "<q-2@example.org>",
        "references": ["<q-1@example.org>"],
        "subject": "Printer",
    }
    operator(
        conn_id,
        data=[
            {
                "to": record["from"],
                "subject": "Re: " + record["subject"],
                "in_reply_to": record["message_id"],
                "references": [*record["references"], record["message_id"]],
                "headers": {"X-Ticket-Id": "42"},
            }
        ],
        headers={"X-Team": "support", "X-Ticket-Id": "fallback"},
        auto_submitted="auto-replied",
        parameter_priority="consumed_data",
    ).execute(CONTEXT)
    [received] = smtp.starttls.messages
    message = received.parsed()
    assert message["In-Reply-To"] == "<q-2@example.org>"
    assert message["References"] == "<q-1@example.org> <q-2@example.org>"
    assert message["Auto-Submitted"] == "auto-replied"
    assert (message["X-Ticket-Id"], message["X-Team"]) == ("42", "support")


def test_a_bad_header_in_the_last_item_sends_nothing(smtp: SmtpServers, conn_id: str) -> None:
    data = [
        {"to": "a@example.org", "headers": {"X-Ok": "1"}},
        {"to": "b@example.org", "headers": {"Bcc": "victim@example.org"}},
    ]
    with pytest.raises(MailSendError, match="Item 1 sets the header Bcc"):
        operator(conn_id, data=data).execute(CONTEXT)
    assert smtp.starttls.messages == []


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"headers": ["X-A"]}, "headers must be a dict"),
        ({"attachment_dirs": 3}, "attachment_dirs must be"),
        ({"max_attachment_bytes": 0}, "max_attachment_bytes"),
        ({"auto_submitted": 1}, "auto_submitted must be text"),
    ],
)
def test_wrong_parameters_fail_when_the_task_is_built(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(MailConfigError, match=message):
        operator("mail_smtp_default", to="a@example.org", **kwargs)


def test_raw_message_on_the_wire_has_no_mime_surprises(
    smtp: SmtpServers, conn_id: str, tmp_path: Path
) -> None:
    (tmp_path / "a.bin").write_bytes(BLOB)
    operator(conn_id, to="a@example.org", attachments=str(tmp_path / "a.bin")).execute(CONTEXT)
    [received] = smtp.starttls.messages
    parsed = email.message_from_bytes(received.data, policy=email.policy.default)
    assert parsed.get_content_type() == "multipart/mixed"
    assert not parsed.defects
    assert all(not part.defects for part in parsed.walk())
