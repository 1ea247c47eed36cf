"""Turn the raw bytes of one email into the message record that tasks receive.

``build_record`` is the only entry point. It never fails because of what a message
contains: unknown or lying charsets, 8-bit bytes in headers, broken MIME structure and
missing headers all give a best-effort record, so one bad email cannot fail a poll.

The MIME walk is in ``mime.py``, decoding in ``decoding.py``, address headers in
``address_fields.py``, the HTML rendering in ``html_text.py``; this module reads the
headers a record needs and puts the record together.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from email.message import Message
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar

from airflow_provider_mail.mail.address_fields import address_field
from airflow_provider_mail.mail.attachments import AttachmentSink, message_key
from airflow_provider_mail.mail.decoding import (
    Charsets,
    DeclaredCharsets,
    decode_header_value,
    header_text,
    one_line,
)
from airflow_provider_mail.mail.html_text import html_to_text
from airflow_provider_mail.mail.mime import (
    MAX_DEPTH,
    FlatPart,
    classify,
    decode_run,
    iter_leaves,
    parse_message,
    part_text,
    payload_bytes,
)
from airflow_provider_mail.mail.replies import HEADERS as REPLY_HEADERS
from airflow_provider_mail.mail.replies import reply_fields_of

__all__ = ["build_record"]

log = logging.getLogger(__name__)

# Limits that keep a record small enough for XCom whatever a stranger sends; what a limit
# leaves out is counted in the record's ``truncated`` field (docs/records.md). MAX_DEPTH,
# the MIME levels parsed, is the parser's (mime.py).
#: Attachments saved per message; the others are counted, not saved.
MAX_ATTACHMENTS = 500
#: Characters kept of ``text`` and of ``html``.
MAX_BODY_CHARS = 1_000_000
#: Characters kept of each header field of the record (``subject``, ``to``...).
MAX_HEADER_CHARS = 65_536
#: Characters kept of an attachment's ``filename`` in the record.
MAX_FILENAME_CHARS = 1_000


def build_record(
    raw: bytes,
    *,
    folder: str,
    attachments: AttachmentSink,
    uid: int | None = None,
    uidvalidity: int | None = None,
    uidl: str | None = None,
) -> dict[str, Any]:
    """Build the message record of the SPEC from a raw RFC 5322 message.

    Every key of the record is always present and every value is JSON-safe::

        {"message_id": "<1@x>", "from": "Jane Doe <jane@example.com>", "to": "...",
         "cc": "", "bcc": "", "reply_to": "", "subject": "Hello", "date":
         "2024-05-01T09:30:00+02:00", "text": "Hi!\\n", "html": None, "attachments":
         [{"filename": "report.pdf", "content_type": "application/pdf", "size": 1234,
           "path": "/tmp/airflow-provider-mail/.../report.pdf"}], "folder": "INBOX",
         "uid": 42, "uidvalidity": 1700000000, "uidl": None, "size": 5678,
         "in_reply_to": None, "references": [], "automatic": False, "truncated": {}}

    ``truncated`` says what the record's limits left out (docs/records.md), e.g.
    ``{"attachments": 1234}``; ``{}`` for all but hostile mail.

    :param raw: the message exactly as fetched (IMAP ``BODY[]``, POP3 ``RETR``).
    :param folder: the folder it came from (``INBOX`` for POP3).
    :param attachments: where attachment bytes go, usually a
        :class:`~airflow_provider_mail.mail.attachments.DirectorySink`; only the returned
        path or URL enters the record.
    :param uid: the IMAP UID, with ``uidvalidity``.
    :param uidvalidity: the folder's IMAP UIDVALIDITY.
    :param uidl: the POP3 unique id.

    Whatever the bytes contain, this does not raise; only an error of the sink (a full
    disk, a refused upload) propagates, so an attachment is never silently lost.
    """
    record: dict[str, Any] = {
        "message_id": None,
        "from": "",
        "to": "",
        "cc": "",
        "bcc": "",
        "reply_to": "",
        "subject": "",
        "date": None,
        "text": "",
        "html": None,
        "attachments": [],
        "folder": folder,
        "uid": uid,
        "uidvalidity": uidvalidity,
        "uidl": uidl,
        "size": len(raw),
        "in_reply_to": None,
        "references": [],
        "automatic": False,
        "truncated": {},
    }
    key = _Key(raw, folder=folder, uid=uid, uidvalidity=uidvalidity, uidl=uidl)
    try:
        message, lifted = parse_message(raw)
    except Exception as err:  # the SPEC: a bad message still becomes a record
        log.warning(
            "Message %s could not be parsed (%s); keeping an empty record.",
            key,
            type(err).__name__,
        )
        return record
    truncated: dict[str, int] = record["truncated"]
    leaves = list(iter_leaves(message))
    charsets = DeclaredCharsets(message, leaves)
    headers = _record_headers(message)
    for field, value in _header_fields(headers, key, charsets).items():
        if field in _CAPPED_HEADERS and len(value) > MAX_HEADER_CHARS:
            value = _cap(value, MAX_HEADER_CHARS, field, truncated)
        record[field] = value
    record.update(reply_fields_of(headers))
    texts: list[str] = []
    htmls: list[str] = []
    for leaf in leaves:
        if isinstance(leaf.part, FlatPart):
            truncated["depth"] = MAX_DEPTH
        try:
            role, filename, content_type = classify(leaf, charsets)
            if role == "attachment" and len(record["attachments"]) >= MAX_ATTACHMENTS:
                truncated["attachments"] = truncated.get("attachments", 0) + 1
                continue
            run = lifted.get(leaf.part) if lifted else None
            data = payload_bytes(leaf) if run is None else decode_run(raw, run)
            body = part_text(leaf, data) if role != "attachment" else ""
        except Exception as err:
            log.warning("Skipped an unreadable part of message %s (%s).", key, type(err).__name__)
            continue
        if role == "text":
            texts.append(body)
        elif role == "html":
            htmls.append(body)
        else:
            path = attachments.save(str(key), filename, content_type, data)
            record["attachments"].append(
                {
                    "filename": _cap(filename, MAX_FILENAME_CHARS, "filename", truncated),
                    "content_type": content_type,
                    "size": len(data),
                    "path": path,
                }
            )
        # Let this part's bytes go before the next part is decoded: peak memory stays at
        # about one decoded part, whatever the number of attachments.
        del data
    html = "\n".join(htmls) if htmls else None
    text = "\n".join(texts)
    if not text.strip() and html:
        text = html_to_text(html)
    record["text"] = _cap(text, MAX_BODY_CHARS, "text", truncated)
    record["html"] = _cap(html, MAX_BODY_CHARS, "html", truncated)
    return record


class _Key:
    """The message's :func:`message_key`, worked out the first time it is needed.

    Only attachments and warnings need it, and it costs a fifth of a small message's
    parse (a hash of the raw bytes, or a file-name check of folder and UID).
    """

    __slots__ = ("_ids", "_raw", "_value")

    def __init__(self, raw: bytes, **ids: Any) -> None:
        self._raw = raw
        self._ids = ids
        self._value: str | None = None

    def __str__(self) -> str:
        if self._value is None:
            self._value = message_key(self._raw, **self._ids)
        return self._value


_CAPPED_HEADERS = frozenset({"message_id", "from", "to", "cc", "bcc", "reply_to", "subject"})
_T = TypeVar("_T", str, "str | None")


def _cap(value: _T, limit: int, field: str, truncated: dict[str, int]) -> _T:
    """``value`` cut to ``limit`` characters; what was cut is added to ``truncated[field]``."""
    if value is None or len(value) <= limit:
        return value
    truncated[field] = truncated.get(field, 0) + len(value) - limit
    return value[:limit]


def _record_headers(message: Message) -> dict[str, list[str]]:
    """The values of the headers a record reads (replies.py's too), by lower-case name, in one
    pass over the message's headers."""
    headers: dict[str, list[str]] = {}
    for name, value in message.raw_items():  # as items() gives them: see mime.iter_leaves
        key = name.lower()
        if key in _RECORD_HEADERS:
            headers.setdefault(key, []).append(str(value))
    return headers


def _header_fields(headers: dict[str, list[str]], key: _Key, charsets: Charsets) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for field, source, reader in _HEADER_READERS:
        if source not in headers:
            continue  # the record's default is what the reader gives for a missing header
        try:
            value = (
                address_field(headers, charsets, source)
                if reader is None
                else reader(headers, charsets)
            )
        except Exception as err:
            log.warning(
                "Header %s of message %s could not be decoded (%s).",
                field,
                key,
                type(err).__name__,
            )
            continue
        if value is not None:
            fields[field] = value
    return fields


def _message_id(headers: dict[str, list[str]], charsets: Charsets) -> str | None:
    values = headers.get("message-id")
    if not values:
        return None
    return decode_header_value(values[0], charsets) or None


def _subject(headers: dict[str, list[str]], charsets: Charsets) -> str:
    values = headers.get("subject")
    return decode_header_value(values[0], charsets) if values else ""


def _date(headers: dict[str, list[str]], charsets: Charsets) -> str | None:
    values = headers.get("date")
    if not values:
        return None
    try:
        return date_text(one_line(header_text(values[0], charsets)))
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def date_text(text: str) -> str:
    """The record's ``date``: ``parse_date(text)`` in ISO 8601, UTC when it names no zone.

    The usual form is written from the regular expression's groups: ``isoformat`` of an
    aware ``datetime`` costs more than reading the date (``tests/unit/test_parse_fast_paths.py``
    compares the two). Raises what :func:`parse_date` raises.
    """
    match = _USUAL_DATE.fullmatch(text)
    if match is None:
        moment = parse_date(text)
        if moment.tzinfo is None:
            # "-0000" means UTC with no statement about the sender's zone (RFC 5322 3.3).
            moment = moment.replace(tzinfo=timezone.utc)
        return moment.isoformat()
    fields, offset = _usual_date_fields(match)
    datetime(*fields)  # the same ValueError as parse_date for a day, hour... out of range
    zone = "+00:00" if offset is None else _zone_text(offset)
    year, month, day, hour, minute, second = fields
    return f"{year:04d}-{month:02d}-{day:02d}T{hour:02d}:{minute:02d}:{second:02d}{zone}"


# The form nearly every sender writes (RFC 5322 3.3 without obsolete syntax), with any
# comment after the zone: "Sun, 29 Nov 2026 10:01:00 +0100 (CET)".
_USUAL_DATE = re.compile(
    r"(?:(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), )?([0-9]{1,2}) "
    r"(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) ([0-9]{4}) "
    r"([0-9]{2}):([0-9]{2})(?::([0-9]{2}))? ([+-])([0-9]{2})([0-9]{2})(?:\s.*)?",
    re.ASCII | re.DOTALL,
)
# Year, month, day, hour, minute, second.
_DateFields = tuple[int, int, int, int, int, int]
_MONTHS = {
    name: number
    for number, name in enumerate(
        ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1
    )
}


def parse_date(text: str) -> datetime:
    """``email.utils.parsedate_to_datetime(text)``, without its general parser for the usual form.

    ``parsedate_to_datetime`` splits and tries every historic form, a tenth of a small
    message's parse; the usual form is read with one regular expression, giving exactly
    what it gives (``tests/unit/test_parse_dates.py`` compares the two on random dates).
    Anything else goes to ``parsedate_to_datetime``.
    """
    match = _USUAL_DATE.fullmatch(text)
    if match is None:
        return parsedate_to_datetime(text)
    fields, offset = _usual_date_fields(match)
    if offset is None:  # "-0000": no statement about the zone, a naive datetime
        return datetime(*fields)
    return datetime(*fields, tzinfo=_zone(offset))


def _usual_date_fields(match: re.Match[str]) -> tuple[_DateFields, int | None]:
    """Year to second, and the zone's offset in seconds (``None`` for "-0000")."""
    day, month, year, hour, minute, second, sign, zone_hours, zone_minutes = match.groups()
    number = int(year)
    if number < 100:  # how parsedate_to_datetime reads a two-digit year, even as "0099"
        number += 1900 if number > 68 else 2000
    fields: _DateFields = (
        number,
        _MONTHS[month],
        int(day),
        int(hour),
        int(minute),
        int(second or 0),
    )
    offset = int(zone_hours) * 3600 + int(zone_minutes) * 60
    if sign == "-":
        if not offset:
            return fields, None
        offset = -offset
    return fields, offset


@functools.cache  # at most 2 x 24 x 100 offsets (the regex allows 4 digits, the zone 24 h)
def _zone(offset: int) -> timezone:
    return timezone(timedelta(seconds=offset))


@functools.cache  # as many as _zone
def _zone_text(offset: int) -> str:
    """How ``isoformat`` writes the zone (``+01:00``); ValueError beyond 24 hours, as _zone."""
    return datetime(2000, 1, 1, tzinfo=_zone(offset)).isoformat()[19:]


# (record field, the one header it is read from, its reader; None: an address header).
_HEADER_READERS: tuple[
    tuple[str, str, Callable[[dict[str, list[str]], Charsets], str | None] | None], ...
] = (
    ("message_id", "message-id", _message_id),
    ("from", "from", None),
    ("to", "to", None),
    ("cc", "cc", None),
    ("bcc", "bcc", None),
    ("reply_to", "reply-to", None),
    ("subject", "subject", _subject),
    ("date", "date", _date),
)
_RECORD_HEADERS = frozenset(source for _field, source, _reader in _HEADER_READERS) | REPLY_HEADERS
