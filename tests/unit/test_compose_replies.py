"""compose_email's threading headers, extra headers and Auto-Submitted, honest and hostile."""

from __future__ import annotations

import base64
import email
import email.policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_mail.exceptions import MailSendError
from airflow_provider_mail.mail.compose import compose_email
from airflow_provider_mail.mail.outgoing import AttachmentRequest, resolve
from airflow_provider_mail.mail.priority import merge_fields
from airflow_provider_mail.mail.replies import MAX_REFERENCES

BASE = {"from": "Support <support@example.com>", "to": "bob@example.org", "text": "Hi"}


def wire(**fields: Any) -> tuple[bytes, EmailMessage]:
    raw = compose_email({**BASE, **fields}, item=3).as_bytes()
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return raw, message


def header_names(raw: bytes) -> list[str]:
    head = raw.split(b"\r\n\r\n", 1)[0].decode()
    return [line.split(":", 1)[0] for line in head.split("\r\n") if line[:1] not in " \t"]


def test_a_reply_threads() -> None:
    _raw, message = wire(
        in_reply_to="<q-2@example.org>", references=["<q-1@example.org>", "<q-2@example.org>"]
    )
    assert message["In-Reply-To"] == "<q-2@example.org>"
    assert message["References"] == "<q-1@example.org> <q-2@example.org>"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("<a@x> <b@x>", "<a@x> <b@x>"),
        ("a@x", "<a@x>"),
        ("a@x, b@x", "<a@x> <b@x>"),
        (str(["<a@x>", "<b@x>"]), "<a@x> <b@x>"),  # a list a template rendered as text
        (["<a@x>", "<a@x>", "b@x"], "<a@x> <b@x>"),
        ("", None),
        ([], None),
    ],
)
def test_references_accept_text_or_a_list(value: object, expected: str | None) -> None:
    _raw, message = wire(references=value)
    assert message["References"] == expected


def test_long_ids_are_written_as_they_are_never_encoded() -> None:
    ids = [f"<{'x' * 200}.{number}@example.org>" for number in range(3)]
    raw, message = wire(in_reply_to=ids[-1], references=ids)
    assert b"=?" not in raw
    assert message["References"].split() == ids
    assert all(len(line) <= 998 for line in raw.split(b"\r\n"))


def test_references_are_bounded() -> None:
    ids = [f"<{number}@x>" for number in range(5000)]
    _raw, message = wire(references=ids)
    written = message["References"].split()
    assert len(written) == MAX_REFERENCES
    assert written[0] == "<0@x>" and written[-1] == "<4999@x>"


@pytest.mark.parametrize(
    "value",
    [
        "<a@x>\r\nBcc: victim@example.org",
        "<a@x> Bcc: victim@example.org",
        "=?utf-8?q?=0D=0ABcc=3A_victim=40example=2Eorg?=",
        "<a@x> (a comment smuggling text)",
        "not an id at all",
        "<a b@x>",
        ["<a@x>", "<b@x>\nX-Evil: 1"],
        "<" + "x" * 950 + "@x>",
    ],
)
def test_threading_values_carry_nothing_but_ids(value: object) -> None:
    for field in ("in_reply_to", "references"):
        with pytest.raises(MailSendError, match=f"Item 3 has an? .*{field}"):
            compose_email({**BASE, field: value}, item=3)


def test_extra_headers_are_written_as_given() -> None:
    raw, message = wire(
        headers={"X-Ticket-Id": 42, "X-Note": "café =?utf-8?q?not_a_word?=", "Precedence": "bulk"}
    )
    assert message["X-Ticket-Id"] == "42"
    assert message["X-Note"] == "café =?utf-8?q?not_a_word?="
    assert message["Precedence"] == "bulk"
    assert header_names(raw).count("X-Note") == 1


@pytest.mark.parametrize(
    "name",
    [
        "From",
        "to",
        "CC",
        "Bcc",
        "Subject",
        "Message-ID",
        "Date",
        "Reply-To",
        "In-Reply-To",
        "References",
        "Auto-Submitted",
        "MIME-Version",
        "Content-Type",
        "content-transfer-encoding",
        "Sender",
        "Resent-To",
        "Return-Path",
        "Received",
        "DKIM-Signature",
    ],
)
def test_structural_headers_cannot_be_set_through_headers(name: str) -> None:
    with pytest.raises(MailSendError, match=f"Item 3 sets the header {name} through headers"):
        compose_email({**BASE, "headers": {name: "x"}}, item=3)


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({"X-A": "1\r\nBcc: victim@example.org"}, "line break"),
        ({"X-A": "1\nBcc: victim@example.org"}, "line break"),
        ({"X-A": "a\x00b"}, "control character"),
        (
            {"X-A": "=?utf-8?b?" + base64.b64encode(b"1\r\nBcc: v@x.org").decode() + "?="},
            "encoded word",
        ),
        ({"X-A\r\nBcc": "v@x.org"}, "not a valid field name"),
        ({"X A": "1"}, "not a valid field name"),
        ({"X-A:": "1"}, "not a valid field name"),
        ({"": "1"}, "not a valid field name"),
        ({"X-" + "a" * 80: "1"}, "not a valid field name"),
        ({"X-A": "1", "x-a": "2"}, "twice"),
        ({"X-A": ["1"]}, "of type list"),
        ({"X-A": "a" * 2001}, "longer than"),
        ({f"X-{number}": "1" for number in range(51)}, "more than 50"),
        ("['X-A']", "of type list"),
        ("{'X-A': __import__('os')}", "not a list or dict"),
    ],
)
def test_hostile_extra_headers_are_refused(headers: object, message: str) -> None:
    with pytest.raises(MailSendError, match=message):
        compose_email({**BASE, "headers": headers}, item=3)


def test_headers_rendered_as_text_by_a_template_are_read_back() -> None:
    _raw, message = wire(headers=str({"X-Ticket-Id": "7"}))
    assert message["X-Ticket-Id"] == "7"


def test_auto_submitted() -> None:
    _raw, message = wire(auto_submitted="auto-replied")
    assert message["Auto-Submitted"] == "auto-replied"
    assert wire(auto_submitted=None)[1]["Auto-Submitted"] is None
    for bad in ("auto-replied\r\nBcc: v@x.org", "auto replied", "", 7):
        if bad == "":
            continue
        with pytest.raises(MailSendError, match="auto_submitted"):
            compose_email({**BASE, "auto_submitted": bad}, item=3)


def test_headers_merge_name_by_name_with_the_priority_side_winning() -> None:
    operator = {"headers": {"X-Team": "support", "X-Ticket-Id": "default"}}
    item = {"headers": {"x-ticket-id": "42", "X-Team": ""}}
    merged = merge_fields(operator, item, "consumed_data")
    assert merged["headers"] == {"X-Team": "support", "x-ticket-id": "42"}
    merged = merge_fields(operator, item, "input_values")
    assert merged["headers"] == {"X-Team": "support", "X-Ticket-Id": "default"}


def test_attachments_arrive_byte_for_byte(tmp_path: Path) -> None:
    # Bytes that text transfer encodings would change: CR, LF, NUL, a lone dot line, 8-bit.
    payload = bytes(range(256)) * 40 + b"\r\n.\r\n\n.\n\r\r\x00" + b"\xff" * 1000
    (tmp_path / "blob.bin").write_bytes(payload)
    (tmp_path / "notes.txt").write_bytes(b"line one\nline two\r\nno final newline")
    files = resolve(
        [
            AttachmentRequest(str(tmp_path / "blob.bin")),
            AttachmentRequest(f"file://{tmp_path}/notes.txt", "Überblick.txt"),
        ],
        "Item 3",
        10**6,
    )
    composed = compose_email({**BASE, "subject": "files"}, item=3, attachments=files)
    message = email.message_from_bytes(composed.as_bytes(), policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    received = {
        part.get_filename(): part.get_payload(decode=True) for part in message.iter_attachments()
    }
    assert received == {
        "blob.bin": payload,
        "Überblick.txt": b"line one\nline two\r\nno final newline",
    }
    body = message.get_body(("plain",))
    assert body is not None and body.get_content().strip() == "Hi"
    # The batch holds no file bytes until the email goes out.
    assert not composed.message.is_multipart()


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("Subject", "Weekly report 42"),
        ("Subject", "a (b) <c> [d] ; e: f"),
        ("Date", "Tue, 01 Dec 2026 19:03:38 +0000"),
        ("Message-ID", "<179615181834.18000.14702609721590742137@example.com>"),
        ("To", "Lead 0 <lead0@example.org>, b@example.org"),
        ("From", '"J. Doe (Sales)" <j@example.org>'),
        ("Reply-To", '"Doe, Jane" <jane@example.org>'),
    ],
)
def test_headers_written_without_the_library_are_what_the_library_writes(
    name: str, value: str
) -> None:
    """The short cut for short plain headers gives exactly the library's bytes."""
    from email.headerregistry import Address

    from airflow_provider_mail.mail import compose
    from airflow_provider_mail.mail.addresses import parse_addresses

    policy = email.policy.default.clone(linesep="\r\n")
    if name in ("To", "From", "Reply-To"):
        addresses = parse_addresses([value])
        ours = compose._address_header(name, addresses)
        library: object = policy.header_store_parse(name, addresses)[1]
        assert all(isinstance(a, Address) for a in addresses)
    else:
        ours = compose._plain(name, value)
        library = value
    assert isinstance(ours, compose._PlainHeader)
    assert policy.fold_binary(name, ours) == policy.fold_binary(name, library)
