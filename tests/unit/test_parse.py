"""Raw bytes -> message record, driven by the corpus in tests/corpus (no server)."""

from __future__ import annotations

import base64
import hashlib
import json
import random
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_mail.mail import mime, parse
from airflow_provider_mail.mail.attachments import DirectorySink, message_key, safe_filename
from airflow_provider_mail.mail.decoding import decode_bytes, decode_header_value
from airflow_provider_mail.mail.html_text import html_to_text
from airflow_provider_mail.mail.parse import build_record
from tests.unit.record_digests import CORPUS, corpus_files, mutations

RECORD_KEYS = [
    "message_id",
    "from",
    "to",
    "cc",
    "bcc",
    "reply_to",
    "subject",
    "date",
    "text",
    "html",
    "attachments",
    "folder",
    "uid",
    "uidvalidity",
    "uidl",
    "size",
    "in_reply_to",
    "references",
    "automatic",
    "truncated",
]
PDF = b"%PDF-1.4\n" + bytes(range(256)) * 4 + b"\n%%EOF\n"

# What each corpus file must give: record fields, and the attachments as
# (filename, content_type, size, file name on disk, first bytes of the file).
EXPECTED: dict[str, dict[str, Any]] = {
    "plain_utf8_qp.eml": {
        "message_id": "<plain-1@example.com>",
        "from": "Jane Doe <jane@example.com>",
        "to": "info@example.org, Sales Team <sales@example.org>",
        "cc": "bob@example.net",
        "bcc": "",
        "reply_to": "",
        "subject": "Price request for 20 units",
        "date": "2024-05-01T09:30:00+02:00",
        "text": "Hello,\n\ncould you send me a quote for 20 units? The budget is "
        "1\u202f000 \u20ac.\n\nCordialement, José\n",
        "html": None,
        "attachments": [],
    },
    "alternative.eml": {
        "from": '"Doe, Jane" <jane@example.com>',
        "reply_to": "Orders <orders@example.com>",
        "date": "2024-05-02T14:05:09-04:00",
        "text": "Plain version.",
        "html": "<html><body><p>HTML version with café.</p></body></html>",
        "attachments": [],
    },
    "html_only.eml": {
        "subject": "Your order",
        "text": "Order confirmed\n\nThank you, Jane & co.\nLine two.\n\n"
        "Item one\nItem two\n\nTotal: 42€",
        "attachments": [],
    },
    "encoded_headers.eml": {
        "from": "Renée Müller <renee@example.de>",
        "to": '"Doe, Jane" <jane@example.com>, François <francois@example.fr>',
        "cc": "Zöe <zoe@example.com>",
        "bcc": "hidden@example.com",
        "reply_to": "テスト <test@example.jp>",
        "subject": "日本語の件名 and more café",
        "date": "2024-05-04T10:11:12+05:30",
    },
    "attachments.eml": {
        "subject": "Reports attached",
        "text": "See the two reports.",
        "html": '<p>See the two reports. <img src="cid:logo@x"></p>',
        "attachments": [
            ("logo.png", "image/png", 69, "logo.png", b"\x89PNG"),
            (None, "image/png", 69, "attachment.png", b"\x89PNG"),
            ("report.pdf", "application/pdf", len(PDF), "report.pdf", PDF),
            ("report.pdf", "application/pdf", 100, "report-2.pdf", PDF[:100]),
            ("notes.txt", "text/plain", 29, "notes.txt", b"Attached notes, not the body."),
        ],
    },
    "rfc2231_filenames.eml": {
        "text": "Names test.",
        "attachments": [
            ("€ rates.pdf", "application/pdf", 4, "€ rates.pdf", b"euro"),
            (
                "über sehr lange Datei.txt",
                "application/octet-stream",
                4,
                "über sehr lange Datei.txt",
                b"long",
            ),
            ("été.csv", "application/octet-stream", 3, "été.csv", b"ete"),
            ("€.bin", "application/octet-stream", 9, "€.bin", b"nocharset"),
            ("café.bin", "application/octet-stream", 10, "café.bin", b"badcharset"),
        ],
    },
    "unsafe_filenames.eml": {
        "text": "Evil.",
        "attachments": [
            ("../../etc/passwd", "text/plain", 10, "passwd", b"root:x:0:0"),
            ("/etc/passwd", "text/plain", 10, "passwd-2", b"root:x:0:0"),
            ("C:\\evil\\x.txt", "text/plain", 7, "x.txt", b"windows"),
            ("..", "text/plain", 4, "attachment.txt", b"dots"),
            (None, "application/octet-stream", 10, "attachment.bin", b"empty name"),
            ("a b  c.txt", "text/plain", 18, "a b  c.txt", b"control characters"),
        ],
    },
    "charsets.eml": {
        "text": "Unknown charset: café\nLying ascii: naïve\nLying utf-8: garçon\n"
        "Windows quotes: \u201cquoted\u201d and raw ü\nNot a text codec.",
        "attachments": [],
    },
    "header_8bit.eml": {
        "from": "Jürgen Groß <juergen@example.de>",
        "cc": "François <francois@example.fr>",
        "subject": "Grüße aus Köln",
        "date": "2024-05-07T07:07:07+00:00",
        "text": "Raw UTF-8 headers.\n",
    },
    "broken_boundary.eml": {
        "subject": "Broken boundary",
        "text": "--other-boundary\nContent-Type: text/plain\n\nThe boundary never appears.\n"
        "--other-boundary--\n",
        "attachments": [],
    },
    "unterminated_multipart.eml": {
        "text": "First part.",
        "attachments": [
            ("cut.bin", "application/octet-stream", 9, "cut.bin", b"cut short"),
        ],
    },
    "missing_headers.eml": {
        "message_id": None,
        "from": "",
        "to": "",
        "cc": "",
        "bcc": "",
        "reply_to": "",
        "subject": "",
        "date": None,
        "text": "Just a body, no From, To, Subject, Date or Message-ID.\n",
        "html": None,
        "attachments": [],
    },
    "bare_lf.eml": {
        "subject": "Bare LF folded subject",
        "date": "2024-05-08T23:59:59+14:00",
        "text": "Line one\nLine two",
        "attachments": [("data.csv", "text/csv", 7, "data.csv", b"a,b\n1,2")],
    },
    "base64_body.eml": {
        "date": "2024-05-09T00:00:00+00:00",
        "text": "Grüße, this body is base64.\n",
        "html": None,
        "attachments": [],
    },
    "single_attachment.eml": {
        "text": "",
        "html": None,
        "attachments": [("scan.pdf", "application/pdf", len(PDF), "scan.pdf", PDF)],
    },
    "nested_rfc822.eml": {
        "subject": "Fwd: Original",
        "text": "See the forwarded message.",
        "attachments": [
            (None, "message/rfc822", 401, "attachment.eml", b"Message-ID: <inner-1@example.com>"),
        ],
    },
    "empty.eml": {
        "message_id": None,
        "from": "",
        "subject": "",
        "date": None,
        "text": "",
        "html": None,
        "attachments": [],
    },
    "header_injection.eml": {
        "from": '"Evil  Bcc: x@evil.example" <evil@example.com>',
        "subject": "Hello  Bcc: victim@example.com",
        "date": None,
    },
    "delivery_status.eml": {
        "from": "Mail Delivery System <MAILER-DAEMON@example.org>",
        "text": "Your message could not be delivered.",
        "automatic": True,
        "attachments": [
            (None, "message/delivery-status", 118, "attachment", b"Reporting-MTA: dns;"),
            (None, "text/rfc822-headers", 38, "attachment-2", b"From: jane@example.com"),
        ],
    },
    "qp_8bit_lie.eml": {
        "text": "Soft break and raw ñ and encoded ñ.\n",
    },
    "calendar.eml": {
        "text": "You are invited.",
        "attachments": [
            (None, "text/calendar", 30, "attachment.ics", b"BEGIN:VCALENDAR"),
        ],
    },
}


def record_of(name: str, directory: Path, **ids: Any) -> dict[str, Any]:
    raw = (CORPUS / name).read_bytes()
    return build_record(raw, folder="INBOX", attachments=DirectorySink(directory), **ids)


def test_every_corpus_file_has_expectations() -> None:
    assert corpus_files() == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_corpus_record(name: str, tmp_path: Path) -> None:
    record = record_of(name, tmp_path, uid=42, uidvalidity=7)
    expected = dict(EXPECTED[name])
    attachments = expected.pop("attachments", None)

    assert list(record) == RECORD_KEYS
    assert {key: record[key] for key in expected} == expected
    assert record["size"] == (CORPUS / name).stat().st_size
    assert (record["folder"], record["uid"], record["uidvalidity"], record["uidl"]) == (
        "INBOX",
        42,
        7,
        None,
    )
    assert "\n" not in record["subject"] and "\r" not in record["subject"]
    json.dumps(record, ensure_ascii=False).encode("utf-8")
    if attachments is None:
        return
    assert [
        (item["filename"], item["content_type"], item["size"], Path(item["path"]).name)
        for item in record["attachments"]
    ] == [(filename, kind, size, on_disk) for filename, kind, size, on_disk, _ in attachments]
    for item, (*_, start) in zip(record["attachments"], attachments, strict=True):
        path = Path(item["path"])
        assert path.parent == tmp_path / "INBOX-7-42"
        content = path.read_bytes()
        assert len(content) == item["size"]
        assert content.startswith(start)


def test_nested_message_is_kept_whole_and_not_descended_into(tmp_path: Path) -> None:
    record = record_of("nested_rfc822.eml", tmp_path)
    inner = Path(record["attachments"][0]["path"]).read_bytes()
    assert b"Subject: Original\r\n" in inner
    assert b"Inner body must not become the outer text." in inner
    assert base64.b64encode(b"inner attachment") in inner
    assert "Inner body" not in record["text"]


def test_one_megabyte_attachment(tmp_path: Path) -> None:
    payload = random.Random(1).randbytes(1024 * 1024)
    raw = (
        b"From: a@example.com\r\nSubject: big\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'
        b"--b\r\nContent-Type: text/plain\r\n\r\nsee attachment\r\n"
        b'--b\r\nContent-Type: application/zip; name="big.zip"\r\n'
        b"Content-Transfer-Encoding: base64\r\n\r\n"
        + base64.encodebytes(payload).replace(b"\n", b"\r\n")
        + b"--b--\r\n"
    )
    record = build_record(raw, folder="INBOX", attachments=DirectorySink(tmp_path), uidl="abc")
    assert record["text"] == "see attachment"
    [attachment] = record["attachments"]
    assert attachment["filename"] == "big.zip"
    assert attachment["size"] == len(payload)
    assert Path(attachment["path"]).read_bytes() == payload
    assert Path(attachment["path"]).parent == tmp_path / "pop3-abc"
    assert record["size"] == len(raw)


@pytest.mark.parametrize("name", corpus_files())
def test_feeding_in_tiny_slices_changes_nothing(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    whole = record_of(name, tmp_path / "whole")
    monkeypatch.setattr(mime, "_FEED_SLICE", 7)
    sliced = record_of(name, tmp_path / "sliced")
    for record in (whole, sliced):
        for item in record["attachments"]:
            item["path"] = Path(item["path"]).name
    assert sliced == whole


def test_message_keys() -> None:
    raw = b"Subject: x\r\n\r\n"
    assert message_key(raw, folder="INBOX", uid=42, uidvalidity=17) == "INBOX-17-42"
    assert message_key(raw, folder="INBOX", uid=42) == "INBOX-42"
    assert message_key(raw, folder="INBOX", uidl="Abc.123_x-y") == "pop3-Abc.123_x-y"
    unsafe = message_key(raw, folder="INBOX", uidl="../a/b")
    assert "/" not in unsafe and not unsafe.startswith(".")
    assert unsafe != message_key(raw, folder="INBOX", uidl="../a_b")
    folder_key = message_key(raw, folder="Archive/2024", uid=1, uidvalidity=2)
    assert "/" not in folder_key
    assert message_key(raw, folder="INBOX") == message_key(raw, folder="INBOX")
    assert message_key(raw, folder="INBOX").startswith("sha256-")
    # Long folder names of two-byte characters: the distinguishing hash is not cut off.
    wide_x = message_key(raw, folder="é" * 150 + ":x", uid=1)
    wide_y = message_key(raw, folder="é" * 150 + ":y", uid=1)
    assert wide_x != wide_y
    assert safe_filename(wide_x, fallback="m") != safe_filename(wide_y, fallback="m")
    assert message_key(raw, folder="INBOX") != message_key(raw + b"x", folder="INBOX")


def test_sink_errors_are_not_swallowed(tmp_path: Path) -> None:
    class FullDisk:
        def save(
            self, message_key: str, filename: str | None, content_type: str, data: bytes
        ) -> str:
            raise OSError(28, "No space left on device")

    raw = (CORPUS / "single_attachment.eml").read_bytes()
    with pytest.raises(OSError, match="No space left"):
        build_record(raw, folder="INBOX", attachments=FullDisk())


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("=?utf-8?q?caf=C3=A9?=", "café"),
        ("=?UTF-8?B?Y2Fmw6k=?=", "café"),
        ("=?utf-8?q?caf=C3?= =?utf-8?q?=A9?=", "café"),
        ("=?utf-8?q?a?=  =?iso-8859-1?q?=E9?=", "aé"),
        ("Re: =?utf-8?q?caf=C3=A9?= ok", "Re: café ok"),
        ("=?utf-8?b?Y2Fmw6k?=", "café"),
        ("=?x-made-up?q?caf=C3=A9?=", "café"),
        ("=?utf-8*fr?q?caf=C3=A9?=", "café"),
        ("=?utf-8?b?!!!?=", "=?utf-8?b?!!!?="),
        ("folded\r\n subject", "folded subject"),
        ("=?utf-8?q?a=0D=0Ab=00c?=", "a  b c"),
        ("caf\udcc3\udca9", "café"),
        ("caf\udce9", "café"),
        ("plain", "plain"),
    ],
)
def test_decode_header_value(value: str, expected: str) -> None:
    assert decode_header_value(value) == expected


@pytest.mark.parametrize(
    ("data", "charset", "expected"),
    [
        ("café".encode(), "utf-8", "café"),
        ("café".encode(), None, "café"),
        ("café".encode(), "us-ascii", "café"),
        ("café".encode("latin-1"), "utf-8", "café"),
        (b"\x93q\x94", "iso-8859-1", "\u201cq\u201d"),
        (b"\x81\x8d", "utf-8", "\x81\x8d"),
        ("café".encode(), "no-such-charset", "café"),
        (b"x", "base64", "x"),
        (b"x", "utf-8\x00", "x"),
        ("日本".encode("shift_jis"), "Shift_JIS", "日本"),
        (b"\\ud800", "unicode_escape", "\ufffd"),
    ],
)
def test_decode_bytes(data: bytes, charset: str | None, expected: str) -> None:
    assert decode_bytes(data, charset) == expected


def test_html_to_text() -> None:
    html = (
        "<html><head><title>T</title><style>b{}</style></head><body>"
        "<script>var x = '<p>no</p>';</script>"
        "<h1>Title</h1><p>One&nbsp;two &amp; <i>three</i><br>four</p>"
        "<ul><li>a</li><li>b</li></ul>"
        "<table><tr><td>c1</td><td>c2</td></tr></table>"
        "<pre>  keep\n    indent</pre></body></html>"
    )
    assert (
        html_to_text(html)
        == "Title\n\nOne two & three\nfour\n\na\nb\n\nc1\tc2\n\n  keep\n    indent"
    )


def test_html_to_text_survives_broken_markup() -> None:
    assert (
        html_to_text("<p>unclosed <b>bold <div>x</p></i>&bogus; <")
        == "unclosed bold\nx\n\n&bogus; <"
    )


def test_text_falls_back_to_html_when_plain_part_is_empty(tmp_path: Path) -> None:
    raw = (
        b'Content-Type: multipart/alternative; boundary="b"\r\n\r\n'
        b"--b\r\nContent-Type: text/plain\r\n\r\n \r\n"
        b"--b\r\nContent-Type: text/html\r\n\r\n<p>Only here</p>\r\n--b--\r\n"
    )
    record = build_record(raw, folder="INBOX", attachments=DirectorySink(tmp_path))
    assert record["text"] == "Only here"
    assert record["html"] == "<p>Only here</p>"


def test_deeply_nested_multipart_does_not_raise(tmp_path: Path) -> None:
    depth = 3000
    raw = b"".join(
        b'Content-Type: multipart/mixed; boundary="b%d"\r\n\r\n--b%d\r\n' % (level, level)
        for level in range(depth)
    )
    raw += b"Content-Type: text/plain\r\n\r\ndeep\r\n"
    record = build_record(raw, folder="INBOX", attachments=DirectorySink(tmp_path))
    assert list(record) == RECORD_KEYS
    assert record["size"] == len(raw)
    json.dumps(record)


def test_random_and_mutated_bytes_always_give_a_json_safe_record(tmp_path: Path) -> None:
    sink = DirectorySink(tmp_path)
    for raw in mutations(seed=20240501, count=400):
        record = build_record(raw, folder="INBOX", attachments=sink)
        assert list(record) == RECORD_KEYS
        assert record["size"] == len(raw)
        assert isinstance(record["text"], str) and isinstance(record["subject"], str)
        json.dumps(record, ensure_ascii=False).encode("utf-8")
        for item in record["attachments"]:
            assert Path(item["path"]).resolve().is_relative_to(tmp_path.resolve())


def test_html_to_text_drops_source_indentation() -> None:
    html = "<div>\n  <p>\n   Hello <b>you</b>\n  </p>\n  <p>  again</p>\n</div>"
    assert html_to_text(html) == "Hello you\n\nagain"


def test_an_unreadable_part_is_skipped_and_the_rest_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_payload_bytes = parse.payload_bytes

    def payload_bytes(leaf: Any) -> bytes:
        if leaf.part.get_filename() == "report.pdf":
            raise ValueError("simulated parser bug")
        return real_payload_bytes(leaf)

    monkeypatch.setattr(parse, "payload_bytes", payload_bytes)
    record = record_of("attachments.eml", tmp_path)
    assert record["text"] == "See the two reports."
    assert [item["filename"] for item in record["attachments"]] == [
        "logo.png",
        None,
        "notes.txt",
    ]


class RecordingSink:
    """Keeps each attachment's bytes in memory; paths are stable, so records compare equal."""

    def __init__(self) -> None:
        self.saved: list[bytes] = []

    def save(self, message_key: str, filename: str | None, content_type: str, data: bytes) -> str:
        self.saved.append(data)
        return f"memory://{len(self.saved)}"


def record_and_files(raw: bytes) -> tuple[dict[str, Any], list[bytes]]:
    sink = RecordingSink()
    return build_record(raw, folder="INBOX", attachments=sink), sink.saved


def usual_record_and_files(
    raw: bytes, monkeypatch: pytest.MonkeyPatch
) -> tuple[dict[str, Any], list[bytes]]:
    with monkeypatch.context() as patch:
        patch.setattr(mime, "LARGE_MESSAGE", 2**62)
        return record_and_files(raw)


def count_lifted_decodes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    real_decode_run = parse.decode_run

    def decode_run(raw: bytes, run: Any) -> bytes:
        calls.append(run.end - run.start)
        return real_decode_run(raw, run)

    monkeypatch.setattr(parse, "decode_run", decode_run)
    return calls


def base64_lines(data: bytes, newline: bytes) -> bytes:
    return base64.encodebytes(data).replace(b"\n", newline)


def big_nested_message(first: bytes, second: bytes, newline: bytes = b"\r\n") -> bytes:
    """Two base64 attachments at different depths, beside text and HTML; ``newline`` ends lines."""
    message = (
        b"From: a@example.com\nSubject: two big files\nMIME-Version: 1.0\n"
        b'Content-Type: multipart/mixed; boundary="outer"\n\n'
        b"preamble\n"
        b'--outer\nContent-Type: multipart/alternative; boundary="alt"\n\n'
        b"--alt\nContent-Type: text/plain; charset=utf-8\n\nSee both files.\n"
        b"--alt\nContent-Type: text/html\n\n<p>See both files.</p>\n--alt--\n"
        b'--outer\nContent-Type: application/zip; name="first.zip"\n'
        b"Content-Transfer-Encoding: base64\n\n"
    ).replace(b"\n", newline)
    message += base64_lines(first, newline)
    message += (
        b'--outer\nContent-Type: multipart/mixed; boundary="inner"\n\n'
        b'--inner\nContent-Type: image/png\nContent-Disposition: attachment; filename="b.png"\n'
        b"Content-Transfer-Encoding: base64\n\n"
    ).replace(b"\n", newline)
    message += base64_lines(second, newline) + newline
    return message + b"--inner--\n--outer--\nepilogue\n".replace(b"\n", newline)


@pytest.mark.parametrize("newline", [b"\r\n", b"\n"], ids=["crlf", "bare-lf"])
def test_big_base64_bodies_are_decoded_from_the_raw_bytes(
    newline: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = random.Random(1).randbytes(300_000)
    second = random.Random(2).randbytes(200_000)
    raw = big_nested_message(first, second, newline)
    expected = usual_record_and_files(raw, monkeypatch)
    monkeypatch.setattr(mime, "LARGE_MESSAGE", 1000)
    lifted = count_lifted_decodes(monkeypatch)

    record, files = record_and_files(raw)

    assert len(lifted) == 2
    assert (record, files) == expected
    assert record["text"] == "See both files."
    assert [(item["filename"], item["size"]) for item in record["attachments"]] == [
        ("first.zip", len(first)),
        ("b.png", len(second)),
    ]
    assert files == [first, second]


def test_a_message_above_the_real_threshold(monkeypatch: pytest.MonkeyPatch) -> None:
    payload = random.Random(3).randbytes(mime.LARGE_MESSAGE * 3 // 4 + 1000)
    raw = big_nested_message(payload, b"small")
    lifted = count_lifted_decodes(monkeypatch)

    record, files = record_and_files(raw)

    assert lifted and len(raw) >= mime.LARGE_MESSAGE
    assert hashlib.sha256(files[0]).digest() == hashlib.sha256(payload).digest()
    assert files == [payload, b"small"]
    assert (record, files) == usual_record_and_files(raw, monkeypatch)


def big_part(headers: bytes, body: bytes) -> bytes:
    return (
        b'Subject: x\r\nContent-Type: multipart/mixed; boundary="b"\r\n\r\n'
        b"--b\r\nContent-Type: text/plain\r\n\r\nhello\r\n"
        b"--b\r\n" + headers + b"\r\n\r\n" + body + b"\r\n--b--\r\n"
    )


LINES = base64_lines(random.Random(4).randbytes(100_000), b"\r\n")


@pytest.mark.parametrize(
    "raw",
    [
        big_part(b"Content-Type: text/plain", LINES),
        big_part(b"Content-Type: text/plain\r\nContent-Transfer-Encoding: quoted-printable", LINES),
        big_part(
            b"Content-Type: message/rfc822", b"Content-Transfer-Encoding: base64\r\n\r\n" + LINES
        ),
        big_part(b"Content-Transfer-Encoding: base64", b"not base64 \r\n" + LINES),
        big_part(b"Content-Transfer-Encoding: base64", LINES + b"trailing space \r\n" + LINES),
        big_part(b"Content-Transfer-Encoding: base64", b"caf\xc3\xa9\r\n" + LINES),
        b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'
        + LINES
        + b"--b\r\n\r\nx\r\n--b--\r\n",
    ],
    ids=["7bit", "quoted-printable", "forwarded", "text-before", "two-runs", "8-bit", "preamble"],
)
def test_big_bodies_that_cannot_be_lifted_parse_as_usual(
    raw: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    expected = usual_record_and_files(raw, monkeypatch)
    monkeypatch.setattr(mime, "LARGE_MESSAGE", 1000)
    lifted = count_lifted_decodes(monkeypatch)

    assert record_and_files(raw) == expected
    assert not lifted


@pytest.mark.parametrize("min_body", [1, 40])
def test_lifting_bodies_never_changes_a_record(
    min_body: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    samples = [(CORPUS / name).read_bytes() for name in corpus_files()]
    samples += mutations(seed=20240502, count=200)
    expected = [usual_record_and_files(raw, monkeypatch) for raw in samples]
    monkeypatch.setattr(mime, "LARGE_MESSAGE", 0)
    monkeypatch.setattr(mime, "_LARGE_BODY", min_body)
    lifted = count_lifted_decodes(monkeypatch)

    assert [record_and_files(raw) for raw in samples] == expected
    assert lifted
