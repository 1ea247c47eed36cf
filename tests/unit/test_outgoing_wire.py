"""Emails written without the email library equal what the library writes (pure)."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import itertools
import random
import re
from typing import Any

import pytest

from airflow_provider_mail.exceptions import InvalidAddressError, MailSendError
from airflow_provider_mail.mail import compose, outgoing_wire
from airflow_provider_mail.mail.addresses import parse_addresses

NOW = dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.timezone.utc)
ID = "<171.42.99@example.com>"
BASE: dict[str, Any] = {"from": "Sales <sales@example.com>", "to": "lead@example.org"}

# Every field shape the fast path writes, and many it hands to the library.
CORPUS: list[dict[str, Any]] = [
    {"subject": "Hello", "text": "Plain body"},
    {"subject": "Hello", "text": ""},
    {"text": "no subject\r\nCRLF\rCR\nLF"},
    {"subject": "Hello", "html": "<p>only html</p>"},
    {"subject": "Both", "text": "text\n", "html": "<p>html</p>\n"},
    {"subject": "Both, no final newline", "text": "a\n\nb", "html": "<b>x</b>"},
    {"subject": "Votre devis n°7", "text": "Bonjour,\n\nvoici votre devis n°7.\n"},
    {"subject": "日本語の件名" * 8, "text": "本文", "html": "<p>本文</p>"},
    {"subject": "emoji 📨 and é", "text": "é" * 39},
    {"subject": "x" * 100, "text": "long subject: the library folds it"},
    {"subject": "a line", "text": "y" * 79},
    {"subject": "a line", "html": "<p>" + "z" * 200 + "</p>"},
    {"subject": "tab\tinside", "text": "t"},
    {"subject": "=?utf-8?q?caf=C3=A9?=", "text": "look-alike"},
    {"subject": "Price =?utf-8?b?DQpCY2M6IHhAeQ==?=", "text": "encoded CRLF look-alike"},
    {"to": "Jane <jane@example.org>, bob@example.org", "cc": ["c@example.org"], "text": "x"},
    {"to": ", ".join(f"Lead {n} <lead{n}@example.org>" for n in range(12)), "text": "fold"},
    {"to": '"Doe, Jane" <jane@example.org>', "text": "quoted name"},
    {"to": "Jürgen <j@example.org>", "text": "non-ascii name"},
    {"to": "jane@exämple.org", "text": "non-ascii domain"},
    {"to": "a@example.org,, b@example.org", "text": "obsolete empty item"},
    {"reply_to": "Support <help@example.org>", "bcc": "hidden@example.net", "text": "r"},
    {"in_reply_to": "<p@example.org>", "references": "<a@x> <b@x> <p@example.org>", "text": "t"},
    {"auto_submitted": "auto-replied", "headers": {"X-Ticket": "42"}, "text": "auto"},
    {"headers": {"X-Long": "w " * 60}, "text": "long extra header"},
    {"headers": {"X-Unicode": "Grüße"}, "text": "non-ascii extra header"},
    {"text": "From the start\n.\n..\nA line with only a dot"},
    {"text": "surrogate \udc80", "subject": "odd"},
]


def _fields(extra: dict[str, Any]) -> dict[str, Any]:
    return {**BASE, **extra}


@pytest.fixture(autouse=True)
def _fixed_message_id(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(compose, "new_message_id", lambda domain: ID)


def _library(fields: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> bytes:
    with monkeypatch.context() as patch:
        patch.setattr(compose, "_written", lambda *args: None)
        return compose.compose_email(fields, now=NOW).as_bytes()


def _same_boundary(data: bytes, other: bytes) -> bytes:
    """``data`` with its multipart boundary replaced by the one in ``other``."""
    found = [re.search(rb'boundary="([^"]+)"', one) for one in (data, other)]
    if found[0] is None or found[1] is None:
        return data
    return data.replace(found[0][1], found[1][1])


def _parsed(data: bytes) -> list[Any]:
    message = email.message_from_bytes(data, policy=email.policy.default)
    parts = []
    for part in message.walk():
        headers = [(name, str(value)) for name, value in part.items()]
        body = None if part.is_multipart() else part.get_content()
        parts.append((headers, part.get_content_type(), body))
    return parts


def _outcome(fields: dict[str, Any]) -> tuple[Any, ...]:
    try:
        composed = compose.compose_email(fields, now=NOW)
    except (MailSendError, UnicodeError) as err:
        return ("refused", type(err).__name__)
    return ("sent", composed)


@pytest.mark.parametrize("extra", CORPUS, ids=range(len(CORPUS)))
def test_written_emails_read_back_as_the_librarys(
    extra: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    fields = _fields(extra)
    outcome = _outcome(fields)
    if outcome[0] == "refused":
        with pytest.raises((MailSendError, UnicodeError)) as raised:
            _library(fields, monkeypatch)
        assert type(raised.value).__name__ == outcome[1]
        return
    composed = outcome[1]
    expected = _library(fields, monkeypatch)
    data = _same_boundary(composed.as_bytes(), expected)
    assert _parsed(data) == _parsed(expected)
    assert composed.result() == _library_composed(fields, monkeypatch).result()
    assert b"hidden@example.net" not in data


def _library_composed(fields: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> Any:
    with monkeypatch.context() as patch:
        patch.setattr(compose, "_written", lambda *args: None)
        return compose.compose_email(fields, now=NOW)


@pytest.mark.parametrize("extra", CORPUS, ids=range(len(CORPUS)))
def test_plain_headers_are_byte_identical(
    extra: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where every header is printable ASCII, the written bytes are the library's, exactly."""
    fields = _fields(extra)
    if any(not str(value).isascii() for value in fields.values()) or "=?" in str(fields):
        pytest.skip("encoded words: the library's and ours differ in form, not in meaning")
    try:
        composed = compose.compose_email(fields, now=NOW)
    except (MailSendError, UnicodeError):
        pytest.skip("refused by both (see the test above)")
    expected = _library(fields, monkeypatch)
    assert _same_boundary(composed.as_bytes(), expected) == expected


def test_the_common_shapes_take_the_fast_path() -> None:
    for extra in (CORPUS[0], CORPUS[3], CORPUS[4], CORPUS[6], CORPUS[7], CORPUS[15], CORPUS[22]):
        assert compose.compose_email(_fields(extra), now=NOW).written is not None, extra


def test_odd_shapes_go_to_the_library() -> None:
    for index in (9, 10, 11, 12, 13, 17, 18, 19, 24):
        composed = compose.compose_email(_fields(CORPUS[index]), now=NOW)
        assert composed.written is None, CORPUS[index]


def _address_pieces() -> list[str]:
    atoms = ["a", "Lead", "x1", "o'neil", "a+b", "=", "?", "é", "a.b", "a..b", ".a", ""]
    domains = ["example.org", "localhost", "-x.org", "x-.org", "a.b.c", "[127.0.0.1]", "x_y.org"]
    specials = ["", " ", ",", '"', "<", ">", "(", ")", ";", ":", "\\", "=?", "\t", "\u00a0"]
    pieces = []
    for local, domain in itertools.product(atoms, domains):
        pieces += [f"{local}@{domain}", f"Name {local} <{local}@{domain}>"]
    rng = random.Random(16)
    for _ in range(3000):
        name = " ".join(rng.choice(atoms) for _ in range(rng.randint(0, 3)))
        spec = f"{rng.choice(atoms)}@{rng.choice(domains)}"
        piece = f"{name} <{spec}>" if name else spec
        cut = rng.randint(0, len(piece))
        special = rng.choice(specials) if rng.random() < 0.5 else ""
        pieces.append(piece[:cut] + special + piece[cut:])
    return pieces


def test_simple_addresses_agree_with_the_parser() -> None:
    """Whatever the cheap parser accepts, the library parser accepts the same way."""
    accepted = 0
    pieces = _address_pieces()
    for text in [*pieces, *(", ".join(pair) for pair in itertools.pairwise(pieces))]:
        simple = outgoing_wire.simple_addresses([text])
        if simple is None:
            continue
        accepted += 1
        try:
            parsed = parse_addresses([text])
        except InvalidAddressError:
            pytest.fail(f"the cheap parser accepted {text!r}, the library refuses it")
        assert [(a.display_name, a.username, a.domain) for a in simple] == [
            (a.display_name, a.username, a.domain) for a in parsed
        ], text
    assert accepted > 300


@pytest.mark.parametrize(
    "tamper",
    [
        lambda data: data.replace(b"Subject: Hello", b"Subject: Hello\r\nBcc: x@y"),
        lambda data: data.replace(b"Subject: Hello", b"Subject: Hello\nX: y"),
        lambda data: data.replace(b"Subject: Hello", b"Subject: Hel\rlo"),
        lambda data: data.replace(b"Subject: Hello", b"Subject: =?utf-8?b?SGVsbG8NCg==?="),
        lambda data: data.replace(b"To: ", b"Cc: "),
        lambda data: data.replace(b"MIME-Version: 1.0\r\n", b""),
    ],
)
def test_a_written_block_that_does_not_read_back_is_caught(tamper: Any) -> None:
    composed = compose.compose_email(_fields({"subject": "Hello", "text": "x"}), now=NOW)
    assert composed.written is not None
    texts = [
        ("From", "Sales <sales@example.com>"),
        ("To", "lead@example.org"),
        ("Subject", "Hello"),
        ("Date", "Wed, 01 May 2024 12:00:00 +0000"),
        ("Message-ID", ID),
    ]
    assert outgoing_wire.check_written(texts, composed.written)
    assert not outgoing_wire.check_written(texts, tamper(composed.written))


def test_encoded_words_decode_to_the_text_and_keep_lines_short() -> None:
    for text in ("é", "日本語" * 40, "a📨" * 30, "x" * 200 + "é"):
        line = outgoing_wire.header_line("Subject", text)
        assert line is not None
        assert all(len(one) <= 76 for one in line.split("\r\n"))
        message = email.message_from_bytes(line.encode() + b"\r\n", policy=email.policy.default)
        assert message["Subject"] == text
