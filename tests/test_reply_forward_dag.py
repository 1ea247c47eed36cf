"""A real Airflow run (dag.test()): a record mapped into a threaded reply that forwards files."""

from __future__ import annotations

from pathlib import Path

import pytest

from devtools.smtp import SmtpServers
from tests.airflow_runs import task_result
from tests.dags.records_to_mail import load_dag_module
from tests.fixtures_smtp import SmtpConnFactory


def test_a_mapped_reply_threads_and_forwards_the_files_byte_for_byte(
    airflow_db: Path,
    smtp: SmtpServers,
    smtp_connection: SmtpConnFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    conn_id = smtp_connection(smtp.starttls, conn_id="reply_forward_smtp")
    monkeypatch.setenv("REPLY_FORWARD_CONN_ID", conn_id)
    module = load_dag_module("tests.dags.reply_forward_dag")

    run = module.reply_forward_dag.test()

    assert run.state == "success"
    [received] = smtp.starttls.messages
    assert received.rcpt_tos == ("jane@example.org",)
    message = received.parsed()
    assert message["Subject"] == "Re: Contract"
    assert message["In-Reply-To"] == "<contract-2@example.org>"
    assert message["References"] == "<contract-1@example.org> <contract-2@example.org>"
    assert message["Auto-Submitted"] == "auto-replied"
    assert (message["X-Ticket-Id"], message["X-Team"]) == ("4711", "support")
    [attachment] = message.iter_attachments()
    assert attachment.get_filename() == "signed 'final'.pdf"
    assert attachment.get_content_type() == "application/pdf"
    assert attachment.get_payload(decode=True) == module.BLOB
    [result] = task_result(run, "send_reply")
    assert set(result) == {"message_id", "from", "to", "subject"}
