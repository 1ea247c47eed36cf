"""Header injection through what a stranger's email puts into a reply (pure, no server).

The attack: a subject (or display name) that is itself an RFC 2047 encoded word decoding
to CR/LF. Decoded once by the receive side, it reaches compose as ``=?utf-8?b?...?=``;
written as it is, the email library decodes it again and (Python 3.10 to 3.12) puts the
line breaks on the wire. These tests read what would go on the wire back as a receiver.
"""

from __future__ import annotations

import base64
import email
import email.policy
from email.message import EmailMessage, Message
from typing import Any

import pytest

from airflow_provider_mail.exceptions import MailSendError
from airflow_provider_mail.mail.compose import ComposedEmail, compose_email, envelope_of

INJECTION = "hi\r\nBcc: victim@x.org\r\nX-Injected: yes\r\n\r\nFAKE BODY"
ENCODED_INJECTION = "=?utf-8?b?" + base64.b64encode(INJECTION.encode()).decode() + "?="
Q_INJECTION = "=?utf-8?q?hi=0D=0ABcc:_victim@x.org?="
LOOKALIKE = "Price =?utf-8?q?caf=C3=A9?= ok"
BASE: dict[str, Any] = {"from": "a@b.org", "to": "c@d.org", "text": "the body"}


def received(composed: ComposedEmail) -> EmailMessage:
    message = email.message_from_bytes(composed.as_bytes(), policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


def test_the_issue_example_is_refused() -> None:
    with pytest.raises(MailSendError, match=r"encoded word .* subject .* line break"):
        compose_email({**BASE, "subject": "Re: =?utf-8?b?aGkNCkJjYzogdmljdGltQHgub3Jn?="})


@pytest.mark.parametrize("word", [ENCODED_INJECTION, Q_INJECTION, "=?UTF-8?B?DQo=?="])
@pytest.mark.parametrize(
    ("field", "template"),
    [
        ("subject", "Re: {}"),
        ("from", "{} <a@b.org>"),
        ("to", "{} <c@d.org>"),
        ("to", '"{}" <c@d.org>'),
        ("cc", "x@y.org, {} <e@f.org>"),
        ("bcc", "{} <e@f.org>"),
        ("reply_to", "{} <e@f.org>"),
    ],
)
def test_an_encoded_line_break_is_refused_in_every_header(
    word: str, field: str, template: str
) -> None:
    with pytest.raises(MailSendError, match=rf"Item 3 has an encoded word .* {field} "):
        compose_email({**BASE, field: template.format(word)}, item=3)


def test_an_encoded_control_character_is_refused() -> None:
    with pytest.raises(MailSendError, match="control character"):
        compose_email({**BASE, "subject": "=?utf-8?q?a=00b?="})


def test_lookalike_subject_reaches_receivers_as_written() -> None:
    composed = compose_email({**BASE, "subject": LOOKALIKE})
    assert received(composed)["Subject"] == LOOKALIKE
    assert composed.subject == LOOKALIKE
    assert composed.result()["subject"] == LOOKALIKE


def test_doubly_encoded_injection_inside_a_lookalike_stays_text() -> None:
    # Encoded once more, the attack no longer decodes to a line break in one step: it must
    # arrive as the encoded text it is, never be decoded a second time on the way out.
    outer = "=?utf-8?b?" + base64.b64encode(ENCODED_INJECTION.encode()).decode() + "?="
    composed = compose_email({**BASE, "subject": "Re: " + outer})
    message = received(composed)
    assert message["Subject"] == "Re: " + outer
    assert message["Bcc"] is None and message["X-Injected"] is None
    assert message.get_content().strip() == "the body"


@pytest.mark.parametrize("field", ["from", "to", "cc", "reply_to"])
def test_lookalike_display_names_reach_receivers_as_written(field: str) -> None:
    value = '=?utf-8?q?caf=C3=A9?= <e@f.org>, "Q =?x?q?y?=" <g@h.org>'
    if field == "from":
        value = "=?utf-8?q?caf=C3=A9?= <e@f.org>"
    header = field.replace("_", "-").title()
    message = received(compose_email({**BASE, field: value}))
    names = [address.display_name for address in message[header].addresses]
    assert names[0] == "=?utf-8?q?caf=C3=A9?="
    if field != "from":
        assert names[1] == "Q =?x?q?y?="


def test_ordinary_unicode_is_unchanged() -> None:
    message = received(compose_email({**BASE, "subject": "Café", "to": "Zoë <c@d.org>"}))
    assert message["Subject"] == "Café"
    assert message["To"].addresses[0].display_name == "Zoë"


@pytest.mark.parametrize(
    "subject", ["hi\r\nBcc: victim@x.org", "hi\nBcc: victim@x.org", "hi\r\n\r\nFAKE BODY"]
)
def test_a_ready_made_message_with_an_injected_header_is_refused(subject: str) -> None:
    message = Message()
    message["From"] = "a@b.org"
    message["To"] = "c@d.org"
    message["Subject"] = subject
    with pytest.raises(MailSendError, match=r"Email 0 (would go out with headers|has a header)"):
        envelope_of(message, index=0)


def test_a_ready_made_message_whose_header_decodes_to_a_line_break_is_refused() -> None:
    # The library decodes the encoded word when the header is set; depending on the Python
    # version the line break is then written raw (3.10-3.12) or re-encoded (3.13): either
    # way a receiver reads a line break, so the wire check refuses it.
    message = EmailMessage()
    message["From"] = "a@b.org"
    message["To"] = "c@d.org"
    message["Subject"] = ENCODED_INJECTION
    with pytest.raises(MailSendError, match="Email 1 "):
        envelope_of(message, index=1)
