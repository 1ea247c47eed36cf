"""A stranger's email flows through a mapper into the send options: nothing unsafe goes out.

Each attack is a received record (built by the provider's own parser from the stranger's
bytes), mapped by templates a DAG author could plausibly write, and sent to a real aiosmtpd
server. The harmless item before it proves that a refusal stops the whole batch.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_mail.exceptions import MailSendError
from airflow_provider_mail.mail.attachments import DirectorySink
from airflow_provider_mail.mail.parse import build_record
from airflow_provider_mail.operators.map import apply_mapping
from airflow_provider_mail.operators.send import SendEmailOperator
from devtools.smtp import SmtpServers
from tests.fixtures_smtp import SmtpConnFactory

CONTEXT: Any = {}


def b64_word(text: str) -> str:
    return "=?utf-8?b?" + base64.b64encode(text.encode()).decode() + "?="


def stranger(headers: str, tmp_path: Path, body: str = "Hello") -> dict[str, Any]:
    raw = (
        "From: Stranger <stranger@example.net>\r\nTo: info@example.com\r\n"
        f"{headers}\r\n\r\n{body}\r\n"
    ).encode()
    return build_record(raw, folder="INBOX", attachments=DirectorySink(tmp_path))


ATTACKS = {
    # The subject names a file on the worker: a mapping that attaches "{{ subject }}".
    "attach a worker file named in the subject": (
        "Subject: /etc/passwd\r\nMessage-ID: <a@example.net>",
        {"attachments": "{{ subject }}"},
        "outside the folders",
    ),
    "attach through a file URL": (
        "Subject: file:///etc/passwd\r\nMessage-ID: <a@example.net>",
        {"attachments": "{{ subject }}"},
        "outside the folders",
    ),
    "attach a list smuggled in the subject": (
        "Subject: [{'path': '/etc/shadow', 'filename': 'x'}]\r\nMessage-ID: <a@example.net>",
        {"attachments": "{{ subject }}"},
        "outside the folders",
    ),
    "python code where a list is read back": (
        "Subject: [__import__('os').system('touch /tmp/pwned')]\r\nMessage-ID: <a@example.net>",
        {"attachments": "{{ subject }}"},
        "not a list or dict",
    ),
    "a header line in the references": (
        "Subject: hi\r\nMessage-ID: <a@example.net>",
        {"references": "{{ text }}"},
        "line break",
    ),
    "an encoded line break in a mapped header": (
        f"Subject: {b64_word(b64_word('x' + chr(13) + chr(10) + 'Bcc: victim@example.org'))}"
        "\r\nMessage-ID: <a@example.net>",
        {"headers": "{{ {'X-Original-Subject': subject} }}"},
        "encoded word",
    ),
    "a Bcc named by the stranger through headers": (
        "Subject: Bcc\r\nMessage-ID: <a@example.net>",
        {"headers": "{{ {subject: 'victim@example.org'} }}"},
        "sets the header Bcc",
    ),
    "text riding along in In-Reply-To": (
        "Subject: hi\r\nMessage-ID: <a@example.net> Bcc: victim@example.org",
        {"in_reply_to": "{{ message_id }}"},
        "not a list of message ids",
    ),
    "a forged Auto-Submitted value": (
        "Subject: no\r\nX-Evil: 1\r\nMessage-ID: <a@example.net>",
        {"auto_submitted": "{{ subject }} bcc"},
        "auto_submitted",
    ),
}


@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_attack_sends_nothing(
    attack: str, tmp_path: Path, smtp: SmtpServers, smtp_connection: SmtpConnFactory
) -> None:
    headers, mapping, message = ATTACKS[attack]
    evil = stranger(headers, tmp_path, body="x\r\nBcc: victim@example.org")
    mapped = apply_mapping(
        [evil], {"to": '{{ item["from"] | address }}', "subject": "Re: {{ subject }}", **mapping}
    )
    assert isinstance(mapped, list)
    # A harmless item first: the refusal of the second must stop the whole batch.
    mapped.insert(0, {"to": "friend@example.org", "subject": "Hello"})
    send = SendEmailOperator(
        task_id="send",
        conn_id=smtp_connection(smtp.starttls),
        from_email="Info <info@example.com>",
        data=mapped,
        parameter_priority="consumed_data",
    )
    with pytest.raises(MailSendError, match=message) as raised:
        send.execute(CONTEXT)
    assert str(raised.value).startswith("Item 1 ")
    assert smtp.starttls.messages == []
    assert not Path("/tmp/pwned").exists()
