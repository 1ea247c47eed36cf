"""The record builder's short cuts give exactly what the email library gives.

Each short cut answers the usual case itself and hands everything else to the library;
these tests compare the two on random input, so a library change that breaks one fails
here (run on every Python of the matrix).
"""

from __future__ import annotations

import random
from datetime import timezone
from email.message import Message
from email.utils import parsedate_to_datetime
from typing import Any

import pytest

from airflow_provider_mail.mail import mime, replies
from airflow_provider_mail.mail.parse import _USUAL_DATE, date_text, parse_date

DATE_PIECES = [
    "Sun, ", "Mon,", "sun, ", "Tue ", "", "1", "29", "07", "0", "32", "123", " ", "  ", "\t",
    "Nov", "nov", "Feb", "Foo", "2026", "0099", "99", "1969", "10:01", "10:01:00", "23:59:60",
    "24:00", "9:01", ":", "+0100", "-0000", "+0000", "-0530", "+2400", "+9959", "GMT", "EST",
    "(CET)", " (UTC)", "\xa0", "x", ",", "-",
]  # fmt: skip


def random_date(generator: random.Random) -> str:
    if generator.random() < 0.5:  # the usual form, often with one piece changed
        parts = [
            generator.choice(["Sun, ", "Mon, ", ""]),
            generator.choice(["1", "29", "07", "0", "31"]),
            " ",
            generator.choice(["Nov", "Feb", "Dec"]),
            " ",
            generator.choice(["2026", "0099", "0000", "1999"]),
            " ",
            generator.choice(["10:01", "10:01:00", "23:59:59", "24:00:00", "10:61"]),
            " ",
            generator.choice(["+0100", "-0000", "+0000", "-0530", "+2400", "+0199"]),
            generator.choice(["", " (CET)", "  x", "\tUTC"]),
        ]
        if generator.random() < 0.5:
            parts[generator.randrange(len(parts))] = generator.choice(DATE_PIECES)
        return "".join(parts).strip()
    return "".join(generator.choice(DATE_PIECES) for _ in range(generator.randrange(0, 9)))


def library_date(text: str) -> Any:
    try:
        return parsedate_to_datetime(text).isoformat()
    except (TypeError, ValueError, IndexError, OverflowError) as err:
        return type(err)


def our_date(text: str) -> Any:
    try:
        return parse_date(text).isoformat()
    except (TypeError, ValueError, IndexError, OverflowError) as err:
        return type(err)


def library_record_date(text: str) -> Any:
    """The record's date as the library gives it: ISO 8601, UTC when no zone is stated."""
    try:
        moment = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError) as err:
        return type(err)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.isoformat()


def our_record_date(text: str) -> Any:
    try:
        return date_text(text)
    except (TypeError, ValueError, IndexError, OverflowError) as err:
        return type(err)


def test_dates_parse_like_parsedate_to_datetime() -> None:
    generator = random.Random(2822)
    fast = 0
    for _ in range(30_000):
        text = random_date(generator)
        fast += _USUAL_DATE.fullmatch(text) is not None
        assert our_date(text) == library_date(text), text
        assert our_record_date(text) == library_record_date(text), text
    assert fast > 3_000  # the short cut itself was exercised


PARAM_PIECES = [
    "text/plain", "multipart/mixed", "charset", "CHARSET", "name", "filename", "boundary",
    "=", ";", "; ", ";\r\n ", " ", '"', "utf-8", "ISO-8859-1", "a b", "x;y", "<id>", "*",
    "*0", "*=", "''", "%41", "\\", "\\\"", "é", "attachment", "inline", "", ",",
]  # fmt: skip


def param_header(generator: random.Random) -> str:
    if generator.random() < 0.6:  # shaped like real headers
        header = generator.choice(["text/plain", "attachment", "Text/HTML", "", "charset"])
        for _ in range(generator.randrange(0, 4)):
            key = generator.choice(["charset", "Name", "filename", "format", "x-y", "CHARSET"])
            value = generator.choice(
                ["utf-8", '"utf-8"', '"a b; c=d"', '""', "<x>", '"<x>"', "a*b", "é", "'q'"]
            )
            space = generator.choice(["", " ", "\r\n\t", "  "])
            header += f";{space}{key}{generator.choice(['=', ' = '])}{value}"
        if generator.random() < 0.2:
            header += generator.choice([";", "; ", ";;", " ;"])
        return header
    return "".join(generator.choice(PARAM_PIECES) for _ in range(generator.randrange(0, 10)))


def library_param(message: Message, name: str, header: str) -> Any:
    try:
        for key, value in message.get_params([], header):
            if key.lower() == name:
                return value
    except Exception as err:
        return type(err)
    return None


def our_param(message: Message, name: str, header: str) -> Any:
    leaf = next(mime.iter_leaves(message))
    try:
        return leaf.param(name, header)
    except Exception as err:
        return type(err)


def test_parameters_read_like_get_params() -> None:
    generator = random.Random(2045)
    fast = 0
    for _ in range(20_000):
        value = param_header(generator)
        fast += "*" not in value and mime._SIMPLE_PARAMS.fullmatch(value) is not None
        message = Message()
        message["Content-Disposition"] = value
        for name in ("charset", "name", "filename"):
            assert our_param(message, name, "content-disposition") == library_param(
                message, name, "content-disposition"
            ), (value, name)
    assert fast > 5_000  # the short cut itself was exercised


def test_boundaries_read_like_get_boundary() -> None:
    generator = random.Random(2046)
    fast = 0
    for _ in range(20_000):
        value = param_header(generator)
        if generator.random() < 0.5:
            value = value.replace(generator.choice(["charset", "Name", "filename"]), "boundary")
        fast += mime._simple_params(value) and "boundary" in value.lower()
        part = mime._Part()
        part["Content-Type"] = value
        try:
            expected = Message.get_boundary(part, "missing")
        except Exception as err:
            expected = type(err)
        try:
            got = part.get_boundary("missing")
        except Exception as err:
            got = type(err)
        assert got == expected, value
    assert fast > 500  # the short cut itself was exercised


def fresh_part(content_type: str | None) -> Message:
    part = mime._Part()
    if content_type is not None:
        part["Content-Type"] = content_type
    part["X-Other"] = "1"
    return part


@pytest.mark.parametrize(
    "change",
    [
        lambda part: part.set_default_type("message/rfc822"),
        lambda part: part.replace_header("Content-Type", "image/png"),
        lambda part: part.__delitem__("Content-Type"),
        lambda part: part.__setitem__("Content-Type", "text/html"),
        lambda part: part.set_type("application/pdf"),
        lambda part: part.set_param("charset", "utf-8"),
        lambda part: part.set_boundary("b1"),
        lambda part: part.add_header("Content-Type", "audio/ogg"),
        lambda part: part.set_raw("Content-Type", "video/mp4"),
    ],
)
@pytest.mark.parametrize("content_type", [None, "multipart/mixed; boundary=x", "Text/Plain"])
def test_the_remembered_content_type_follows_every_change(
    change: Any, content_type: str | None
) -> None:
    part = fresh_part(content_type)
    assert part.get_content_type() == Message.get_content_type(part)
    try:
        change(part)
    except Exception:  # some changes need a Content-Type header
        return
    assert part.get_content_type() == Message.get_content_type(part)


ENCODINGS = ["", "7bit", "8BIT", "binary", "quoted-printable", "Quoted-Printable", " 8bit",
             "base64", "x-uuencode", "bogus", "7bit ", None]  # fmt: skip
BODY_PIECES = ["caf=C3=A9", "=\r\n", "=", "plain ", "\r\n", "é", "\x00", "=3D", "\t", "=ZZ"]


def test_plain_payloads_decode_like_get_payload() -> None:
    generator = random.Random(2047)
    fast = 0
    for _ in range(5_000):
        encoding = generator.choice(ENCODINGS)
        header = "" if encoding is None else f"Content-Transfer-Encoding: {encoding}\r\n"
        body = "".join(generator.choice(BODY_PIECES) for _ in range(generator.randrange(12)))
        raw = f"Content-Type: text/plain\r\n{header}\r\n{body}".encode("utf-8", "replace")
        message, _ = mime.parse_message(raw)
        leaf = next(mime.iter_leaves(message))
        plain = mime._plain_payload(leaf)
        if plain is not None:  # None: the library's own method decodes it
            fast += 1
            assert plain == message.get_payload(decode=True), raw
    assert fast > 2_000  # the short cut itself was exercised


SENDER_PIECES = [
    "MAILER-DAEMON", "mailer-daemon", "Mailer-Daemon", "PostMaster", "postmaster", "POSTMASTER",
    "ma\u0130ler-daemon", "MA\u0130LER-DAEMON", "po\u017ftmaster", "\u212a", "@", "<", ">", " ",
    "mailer", "-daemon", "post", "master", "x", "é", "\u0131",
]  # fmt: skip


def test_system_sender_search_finds_what_lower_finds() -> None:
    generator = random.Random(3834)
    for _ in range(20_000):
        value = "".join(generator.choice(SENDER_PIECES) for _ in range(generator.randrange(0, 6)))
        lowered = value.lower()
        if any(name in lowered for name in replies._SYSTEM_SENDERS):
            assert replies._SYSTEM_SENDER.search(value) is not None, value
