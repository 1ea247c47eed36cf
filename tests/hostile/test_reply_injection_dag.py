"""End to end: a stranger's doubly encoded subject, mapped into a reply, sent to aiosmtpd.

Real Airflow (``dag.test()``), the provider's parser, MapOperator, SendEmailOperator and a
real SMTP server; the bytes the server received are read back.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from pathlib import Path

import pytest

from devtools.smtp import SmtpServers
from tests.dags.records_to_mail import load_dag_module
from tests.fixtures_smtp import SmtpConnFactory

INJECTION = "hi\r\nBcc: victim@x.org\r\nX-Injected: yes\r\n\r\nFAKE BODY"


def _encoded(text: str) -> str:
    return "=?utf-8?b?" + base64.b64encode(text.encode()).decode() + "?="


@pytest.fixture
def reply(
    airflow_db: Path,
    smtp: SmtpServers,
    smtp_connection: SmtpConnFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> Callable[[str], str]:
    """``reply(subject)``: runs the reply DAG on a stranger's email with that raw Subject
    (sent to the STARTTLS server); returns the run's state."""
    conn_id = smtp_connection(smtp.starttls, conn_id="hostile_reply_smtp")

    def run(subject: str) -> str:
        monkeypatch.setenv("HOSTILE_REPLY_CONN_ID", conn_id)
        monkeypatch.setenv("HOSTILE_REPLY_SUBJECT", subject)
        module = load_dag_module("tests.hostile.reply_dag")
        return str(module.hostile_reply_dag.test().state)

    return run


def test_doubly_encoded_line_breaks_send_nothing(
    reply: Callable[[str], str], smtp: SmtpServers
) -> None:
    # Decoded once by the parser, the subject is the encoded word of the injection.
    state = reply(_encoded(_encoded(INJECTION)))
    assert state == "failed"
    assert smtp.starttls.messages == []


def test_triply_encoded_subject_arrives_as_the_text_the_record_had(
    reply: Callable[[str], str], smtp: SmtpServers
) -> None:
    # Decoded once by the parser, the subject is an encoded word of an encoded word: no
    # line break yet, so it is sent, and must reach the receiver as that text.
    record_subject = _encoded(_encoded(INJECTION))
    assert reply(_encoded(record_subject)) == "success"
    (item,) = smtp.starttls.messages
    assert item.rcpt_tos == ("stranger@example.net",)
    head, _, body = item.data.partition(b"\r\n\r\n")
    names = [line.split(b":")[0].lower() for line in head.split(b"\r\n") if line[:1] not in b" \t"]
    assert b"bcc" not in names and b"x-injected" not in names
    assert names.count(b"subject") == 1
    assert b"FAKE BODY" not in item.data
    assert body.strip() == b"Thanks for your message."
    message = item.parsed()
    assert message["Subject"] == "Re: " + record_subject


def test_lookalike_subject_arrives_as_written(
    reply: Callable[[str], str], smtp: SmtpServers
) -> None:
    written = "Price =?utf-8?q?caf=C3=A9?= ok"
    assert reply(_encoded(written)) == "success"
    (item,) = smtp.starttls.messages
    assert item.parsed()["Subject"] == "Re: " + written
