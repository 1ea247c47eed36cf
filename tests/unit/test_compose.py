"""Composing emails from fields (pure)."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
from email.message import EmailMessage
from typing import Any

import pytest

from airflow_provider_mail.exceptions import MailSendError
from airflow_provider_mail.mail.compose import ComposedEmail, compose_email, envelope_of

BASE: dict[str, Any] = {
    "from": "Sales <sales@example.com>",
    "to": "Jane <jane@example.org>, bob@example.org",
    "cc": ["carol@example.org"],
    "bcc": "secret@example.net",
    "subject": "Hello there",
    "text": "Plain body",
}


def reparsed(composed: ComposedEmail) -> EmailMessage:
    message = email.message_from_bytes(composed.as_bytes(), policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


def test_headers_and_envelope() -> None:
    composed = compose_email(BASE)
    message = reparsed(composed)
    assert message["From"] == "Sales <sales@example.com>"
    assert message["To"] == "Jane <jane@example.org>, bob@example.org"
    assert message["Cc"] == "carol@example.org"
    assert message["Subject"] == "Hello there"
    assert composed.sender == "sales@example.com"
    assert composed.recipients == (
        "jane@example.org",
        "bob@example.org",
        "carol@example.org",
        "secret@example.net",
    )


def test_bcc_is_in_the_envelope_only() -> None:
    composed = compose_email(BASE)
    assert composed.message["Bcc"] is None
    assert b"secret@example.net" not in composed.as_bytes()
    assert "secret@example.net" in composed.recipients


def test_message_id_uses_the_sender_domain_and_date_is_set() -> None:
    now = dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.timezone.utc)
    composed = compose_email(BASE, now=now)
    assert composed.message_id is not None
    assert composed.message_id.endswith("@example.com>")
    assert composed.message["Date"] == "Wed, 01 May 2024 12:00:00 +0000"
    assert compose_email(BASE).message_id != compose_email(BASE).message_id


def test_text_only_is_text_plain() -> None:
    message = reparsed(compose_email(BASE))
    assert message.get_content_type() == "text/plain"
    assert message.get_content().strip() == "Plain body"


def test_text_and_html_make_multipart_alternative() -> None:
    message = reparsed(compose_email({**BASE, "html": "<p>Rich body</p>"}))
    assert message.get_content_type() == "multipart/alternative"
    parts = [part.get_content_type() for part in message.iter_parts()]
    assert parts == ["text/plain", "text/html"]
    html = message.get_body(("html",))
    assert html is not None and "<p>Rich body</p>" in html.get_content()


def test_html_only_is_text_html() -> None:
    message = reparsed(compose_email({**BASE, "text": None, "html": "<b>x</b>"}))
    assert message.get_content_type() == "text/html"


def test_reply_to_and_unicode() -> None:
    composed = compose_email(
        {**BASE, "reply_to": "Jörg <joerg@example.org>", "subject": "Grüße", "text": "Ünïcode"}
    )
    message = reparsed(composed)
    assert message["Reply-To"] == "Jörg <joerg@example.org>"
    assert message["Subject"] == "Grüße"
    assert message.get_content().strip() == "Ünïcode"
    assert not composed.international


def test_result_record() -> None:
    composed = compose_email(BASE)
    assert composed.result() == {
        "message_id": composed.message_id,
        "from": "Sales <sales@example.com>",
        "to": ["jane@example.org", "bob@example.org", "carol@example.org", "secret@example.net"],
        "subject": "Hello there",
    }


def test_duplicate_recipients_are_sent_once() -> None:
    composed = compose_email({**BASE, "cc": "JANE@example.org", "bcc": None})
    assert composed.recipients == ("jane@example.org", "bob@example.org")


def test_bcc_only_is_enough() -> None:
    composed = compose_email({**BASE, "to": None, "cc": None})
    assert composed.recipients == ("secret@example.net",)
    assert composed.message["To"] is None


def test_no_recipient_names_the_item() -> None:
    with pytest.raises(MailSendError, match=r"^Item 3 has no recipient"):
        compose_email({**BASE, "to": "", "cc": [], "bcc": None}, item=3)


def test_no_sender() -> None:
    with pytest.raises(MailSendError, match="The email has no sender"):
        compose_email({**BASE, "from": " "})


@pytest.mark.parametrize("field", ["to", "cc", "bcc", "reply_to"])
def test_invalid_address_names_item_field_and_address(field: str) -> None:
    with pytest.raises(MailSendError) as info:
        compose_email({**BASE, field: "ok@example.org, broken@"}, item=1)
    assert str(info.value).startswith(f"Item 1 has an invalid {field} address 'broken@'")


def test_two_senders_are_refused() -> None:
    with pytest.raises(MailSendError, match="invalid from address"):
        compose_email({**BASE, "from": "a@example.com, b@example.com"})


@pytest.mark.parametrize("field", ["from", "to", "cc", "bcc", "reply_to", "subject"])
@pytest.mark.parametrize("breaker", ["\r\n", "\n", "\r"])
def test_line_breaks_in_any_header_value_are_refused(field: str, breaker: str) -> None:
    value = f"x@example.org{breaker}Bcc: victim@example.net"
    with pytest.raises(MailSendError) as info:
        compose_email({**BASE, field: value}, item=0)
    message = str(info.value)
    assert message.startswith(f"Item 0 has a line break in its {field}")
    assert "victim" not in message


def test_line_break_in_a_list_element_is_refused() -> None:
    with pytest.raises(MailSendError, match="line break in its cc"):
        compose_email({**BASE, "cc": ["ok@example.org", "a@example.org\nBcc: v@example.net"]})


def test_control_character_is_refused() -> None:
    with pytest.raises(MailSendError, match="control character in its subject"):
        compose_email({**BASE, "subject": "bell\x07"})


def test_body_may_have_line_breaks_and_is_never_in_errors() -> None:
    composed = compose_email({**BASE, "text": "line 1\r\nline 2\n"})
    assert "line 2" in reparsed(composed).get_content()
    with pytest.raises(MailSendError) as info:
        compose_email({**BASE, "to": None, "cc": None, "bcc": None, "text": "TOP SECRET BODY"})
    assert "TOP SECRET" not in str(info.value)


def test_non_text_field_is_refused() -> None:
    with pytest.raises(MailSendError, match="subject of type dict"):
        compose_email({**BASE, "subject": {"a": 1}}, item=2)


def test_international_envelope() -> None:
    composed = compose_email({**BASE, "to": "jörg@example.org", "cc": None, "bcc": None})
    assert composed.international
    assert "jörg@example.org".encode() in composed.as_bytes()


def test_envelope_of_a_ready_made_message() -> None:
    message = EmailMessage()
    message["From"] = "Sales <sales@example.com>"
    message["To"] = "a@example.org"
    message["Cc"] = "b@example.org"
    message["Bcc"] = "c@example.org"
    message["Subject"] = "Hi"
    message.set_content("body")
    composed = envelope_of(message, index=4)
    assert composed.sender == "sales@example.com"
    assert composed.recipients == ("a@example.org", "b@example.org", "c@example.org")
    assert composed.message["Bcc"] is None
    assert composed.message_id and composed.message_id.endswith("@example.com>")
    assert composed.message["Date"] is not None
    # the caller's message is untouched
    assert message["Bcc"] == "c@example.org"
    assert message["Message-ID"] is None


def test_envelope_of_keeps_an_existing_message_id() -> None:
    message = EmailMessage()
    message["From"] = "a@example.com"
    message["To"] = "b@example.org"
    message["Message-ID"] = "<fixed@example.com>"
    assert envelope_of(message).message_id == "<fixed@example.com>"


def test_envelope_of_without_recipient_names_the_email() -> None:
    message = EmailMessage()
    message["From"] = "a@example.com"
    with pytest.raises(MailSendError, match=r"^Email 2 has no recipient"):
        envelope_of(message, index=2)
