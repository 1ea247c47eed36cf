"""Hostile messages against ``build_record``: each one failed before its fix (issue 12).

No server is needed: the attack is the bytes of one email.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from airflow_provider_mail.mail import mime, parse
from airflow_provider_mail.mail.attachments import DirectorySink
from airflow_provider_mail.mail.parse import build_record


class CountingSink:
    """Keeps nothing; counts what it was asked to save."""

    def __init__(self) -> None:
        self.saved = 0

    def save(self, message_key: str, filename: str | None, content_type: str, data: bytes) -> str:
        self.saved += 1
        return f"memory://{self.saved}"


def record_of(raw: bytes, sink: Any = None) -> dict[str, Any]:
    record = build_record(raw, folder="INBOX", attachments=sink or CountingSink(), uid=1)
    json.dumps(record, ensure_ascii=False).encode("utf-8")
    return record


def nested(depth: int) -> bytes:
    raw = b"From: Jane Doe <jane@example.com>\r\nSubject: Deep\r\nMIME-Version: 1.0\r\n"
    raw += b"".join(
        b'Content-Type: multipart/mixed; boundary="b%d"\r\n\r\n--b%d\r\n' % (level, level)
        for level in range(depth)
    )
    return raw + b"Content-Type: text/plain\r\n\r\ndeep text\r\n"


def test_thousands_of_nested_multiparts_keep_headers_and_text() -> None:
    record = record_of(nested(5000))
    assert record["from"] == "Jane Doe <jane@example.com>"
    assert record["subject"] == "Deep"
    assert "deep text" in record["text"]
    assert record["truncated"] == {"depth": mime.MAX_DEPTH}


def test_nesting_within_the_cap_is_parsed_as_usual() -> None:
    record = record_of(nested(10))
    assert record["text"] == "deep text"
    assert record["truncated"] == {}


HELLO = "\u041f\u0440\u0438\u0432\u0435\u0442"  # "Hello" in Russian
IVAN = "\u0418\u0432\u0430\u043d"


def test_an_8bit_subject_in_the_declared_charset() -> None:
    raw = (
        f"From: {IVAN} <ivan@example.ru>\r\nSubject: {HELLO}\r\nMIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=windows-1251\r\n"
        f"Content-Transfer-Encoding: 8bit\r\n\r\n{HELLO}!\r\n"
    ).encode("windows-1251")
    record = record_of(raw)
    assert record["subject"] == HELLO
    assert record["from"] == f"{IVAN} <ivan@example.ru>"
    assert record["text"] == f"{HELLO}!\n"


def test_an_8bit_charset_declared_by_a_part_only() -> None:
    raw = (
        b"Subject: \xcf\xf0\xe8\xe2\xe5\xf2\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/alternative; boundary="b"\r\n\r\n'
        b"--b\r\nContent-Type: text/plain; charset=windows-1251\r\n\r\nx\r\n--b--\r\n"
    )
    assert record_of(raw)["subject"] == HELLO


def test_one_bad_byte_spoils_only_its_own_bytes() -> None:
    raw = (
        "From: Jürgen Groß <j@example.de>\r\nSubject: Grüße \udcff aus Köln\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n\r\nx\r\n"
    ).encode("utf-8", "surrogateescape")
    record = record_of(raw)
    assert record["subject"] == "Grüße ÿ aus Köln"
    assert record["from"] == "Jürgen Groß <j@example.de>"
    mixed = b"Subject: Gr\xc3\xbc\xdfe\r\n\r\nx\r\n"  # UTF-8 "u" then a Latin-1 "sz"
    assert record_of(mixed)["subject"] == "Grüße"


def test_a_byte_nothing_can_read_becomes_a_replacement_character() -> None:
    raw = b"Subject: caf\xc3\xa9 \x81\r\n\r\nx\r\n"
    assert record_of(raw)["subject"] == "café \ufffd"


def many_parts(count: int) -> bytes:
    part = b'--b\r\nContent-Type: application/octet-stream; name="p.bin"\r\n\r\nx\r\n'
    return (
        b"From: a@example.com\r\nSubject: parts\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'
        + b"--b\r\nContent-Type: text/plain\r\n\r\nbody\r\n"
        + part * count
        + b"--b--\r\n"
    )


def test_attachments_beyond_the_cap_are_counted_not_saved(tmp_path: Path) -> None:
    count = parse.MAX_ATTACHMENTS + 1234
    record = record_of(many_parts(count), DirectorySink(tmp_path))
    assert len(record["attachments"]) == parse.MAX_ATTACHMENTS
    assert record["truncated"] == {"attachments": 1234}
    assert len(list((tmp_path / "INBOX-1").iterdir())) == parse.MAX_ATTACHMENTS
    assert record["text"] == "body"
    assert len(json.dumps(record)) < 200 * parse.MAX_ATTACHMENTS


def test_huge_bodies_and_headers_are_cut_and_reported() -> None:
    text = "a" * (parse.MAX_BODY_CHARS + 10)
    subject = "s" * (parse.MAX_HEADER_CHARS + 5)
    raw = (
        f"Subject: {subject}\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'
        f"--b\r\nContent-Type: text/plain\r\n\r\n{text}\r\n"
        f"--b\r\nContent-Type: text/html\r\n\r\n<p>{text}</p>\r\n"
        f'--b\r\nContent-Type: text/csv; name="{"n" * 2000}.csv"\r\n\r\nx\r\n--b--\r\n'
    ).encode()
    record = record_of(raw)
    assert len(record["text"]) == len(record["html"]) == parse.MAX_BODY_CHARS
    assert len(record["subject"]) == parse.MAX_HEADER_CHARS
    assert len(record["attachments"][0]["filename"]) == parse.MAX_FILENAME_CHARS
    assert record["truncated"] == {
        "subject": 5,
        "text": 10,
        "html": 17,
        "filename": 2004 - parse.MAX_FILENAME_CHARS,
    }
