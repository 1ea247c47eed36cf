"""Turn the raw bytes of one email into the message record that tasks receive.

``build_record`` is the only entry point. It never fails because of what a message
contains: unknown or lying charsets, 8-bit bytes in headers, broken MIME structure and
missing headers all give a best-effort record, so one bad email cannot fail a poll.

It parses with the ``compat32`` policy and decodes only the headers a record needs;
``email.policy.default`` gives the same values but builds a header object for every
header, which costs several times more per message (see ``benchmarks/parse.py``).
"""

from __future__ import annotations

import binascii
import codecs
import functools
import hashlib
import io
import logging
import re
from collections.abc import Callable, Iterator
from datetime import timezone
from email.feedparser import BytesFeedParser
from email.generator import BytesGenerator
from email.message import Message
from email.policy import Compat32
from email.utils import getaddresses, parsedate_to_datetime
from html.parser import HTMLParser
from typing import Any, TypeVar

from airflow_provider_mail.mail.attachments import (
    AttachmentSink,
    safe_filename,
    shorten_filename,
)
from airflow_provider_mail.mail.large_bodies import LiftedBodies, Run, lift_large_bodies
from airflow_provider_mail.mail.replies import reply_fields

__all__ = ["build_record", "decode_bytes", "decode_header_value", "html_to_text", "message_key"]

log = logging.getLogger(__name__)


class _RawHeaders(Compat32):
    """``compat32`` that hands header values back untouched.

    Plain ``compat32`` wraps a value holding 8-bit bytes in a ``Header`` that can no
    longer be decoded faithfully; this keeps the bytes (as surrogate escapes) so that
    :func:`_header_text` can decode them.
    """

    def header_fetch_parse(self, name: str, value: str) -> str:
        return value


_POLICY = _RawHeaders(linesep="\r\n", max_line_length=None)


class _FlattenHeaders(_RawHeaders):
    """How a forwarded message is written back to bytes, with a short cut for plain headers.

    ``compat32`` folds every header through an ``email.header.Header``, the slowest step of
    writing a message. Without a line length limit, that gives back a one-line ASCII value
    unchanged (checked against ``Header`` on 200,000 random values), so such a value is
    written as it is; anything else goes the usual way.
    """

    def fold_binary(self, name: str, value: str) -> bytes:
        if (
            isinstance(value, str)
            and len(value) < _PLAIN_HEADER_LIMIT
            and value.isascii()
            and "\n" not in value
            and "\r" not in value
        ):
            return f"{name}: {value}\r\n".encode("ascii")
        return super().fold_binary(name, value)


# Far below Header's "no limit" of 1,000,000 characters, where it would start to wrap.
_PLAIN_HEADER_LIMIT = 50_000
_FLATTEN_POLICY = _FlattenHeaders(linesep="\r\n", max_line_length=None)
# Fed in slices, the parser never holds the whole message as one string and as a list of
# lines at once: a 50 MB message peaks near 140 MB instead of 400 MB.
_FEED_SLICE = 64 * 1024
# From this size on, long base64 bodies are lifted out before parsing and decoded straight
# from the raw bytes (see large_bodies.py): a 50 MB message then peaks near 1.8 times its
# size (the raw bytes and the decoded attachment) instead of 3.8 times.
_LARGE_MESSAGE = 8 * 2**20
_LARGE_BODY = 256 * 1024
_BASE64_CHARACTER = re.compile(r"[A-Za-z0-9+/=]")

# Limits that keep a record small enough for XCom whatever a stranger sends; what a limit
# leaves out is counted in the record's ``truncated`` field (docs/records.md).
#: MIME levels parsed; a part deeper than this is read as text.
MAX_DEPTH = 64
#: Attachments saved per message; the others are counted, not saved.
MAX_ATTACHMENTS = 500
#: Characters kept of ``text`` and of ``html``.
MAX_BODY_CHARS = 1_000_000
#: Characters kept of each header field of the record (``subject``, ``to``...).
MAX_HEADER_CHARS = 65_536
#: Characters kept of an attachment's ``filename`` in the record.
MAX_FILENAME_CHARS = 1_000

_ENCODED_WORD = re.compile(r"=\?([^?\s]+)\?([bBqQ])\?([^?]*)\?=")
_FOLDING = re.compile(r"\r?\n(?=[ \t])")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_NEEDS_QUOTES = re.compile(r'[,;:<>@"()\[\]\\]')
_BLANK_LINES = re.compile(r"\n{3,}")
_SPACES = re.compile(r"[ \t\f\r\n]+")
_SURROGATES = re.compile("[\ud800-\udfff]")

# Labels that mail software means as a wider charset (the WHATWG Encoding Standard's rule):
# "iso-8859-1" mail is really windows-1252, and so on.
_SUPERSETS = {
    "latin_1": "cp1252",
    "iso8859-1": "cp1252",
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "shift_jis": "cp932",
    "euc_kr": "cp949",
    "big5": "big5hkscs",
}


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
         "uid": 42, "uidvalidity": 1700000000, "uidl": None, "size": 5678}

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
    key = message_key(raw, folder=folder, uid=uid, uidvalidity=uidvalidity, uidl=uidl)
    try:
        message, lifted = _parse_message(raw)
    except Exception as err:  # the SPEC: a bad message still becomes a record
        log.warning(
            "Message %s could not be parsed (%s); keeping an empty record.",
            key,
            type(err).__name__,
        )
        return record
    truncated: dict[str, int] = record["truncated"]
    leaves = list(_leaves(message))
    charsets = _DeclaredCharsets(message, leaves)
    record.update(_header_fields(message, key, charsets))
    record.update(reply_fields(message.raw_items()))
    for field in _CAPPED_HEADERS:
        record[field] = _cap(record[field], MAX_HEADER_CHARS, field, truncated)
    texts: list[str] = []
    htmls: list[str] = []
    for leaf in leaves:
        if isinstance(leaf.part, _FlatPart):
            truncated["depth"] = MAX_DEPTH
        try:
            role, filename, content_type = _classify(leaf, charsets)
            if role == "attachment" and len(record["attachments"]) >= MAX_ATTACHMENTS:
                truncated["attachments"] = truncated.get("attachments", 0) + 1
                continue
            run = lifted.get(leaf.part)
            data = _payload_bytes(leaf) if run is None else _decode_run(raw, run)
            body = _part_text(leaf, data) if role != "attachment" else ""
        except Exception as err:
            log.warning("Skipped an unreadable part of message %s (%s).", key, type(err).__name__)
            continue
        if role == "text":
            texts.append(body)
        elif role == "html":
            htmls.append(body)
        else:
            path = attachments.save(key, filename, content_type, data)
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


_CAPPED_HEADERS = ("message_id", "from", "to", "cc", "bcc", "reply_to", "subject")
_T = TypeVar("_T", str, "str | None")


def _cap(value: _T, limit: int, field: str, truncated: dict[str, int]) -> _T:
    """``value`` cut to ``limit`` characters; what was cut is added to ``truncated[field]``."""
    if value is None or len(value) <= limit:
        return value
    truncated[field] = truncated.get(field, 0) + len(value) - limit
    return value[:limit]


def _parse_message(raw: bytes) -> tuple[Message, dict[Message, Run]]:
    """The parsed message, and the leaves whose base64 body was lifted out of ``raw``.

    A big message is parsed without its long base64 runs, as long as each run then lands,
    alone, in the text of a leaf that :func:`_payload_bytes` decodes as base64. Anything
    else (a run in a preamble, in a forwarded message, in a quoted-printable part, beside
    other base64 text) parses ``raw`` as usual, so the record is always the same.
    """
    if len(raw) >= _LARGE_MESSAGE:
        try:
            lifted = lift_large_bodies(raw, _LARGE_BODY)
            if lifted is not None:
                message = _parse(raw, lifted.runs)
                leaves = _lifted_leaves(message, lifted)
                if leaves is not None:
                    return message, leaves
        except Exception as err:  # correctness first: the usual parse decides
            log.debug("Parsing without the large bodies failed (%s).", type(err).__name__)
    return _parse(raw), {}


class _FlatPart(Message):
    """A part below :data:`MAX_DEPTH` levels, which the parser reads as text."""

    def get_content_type(self) -> str:
        return "text/plain"


class _CappedParser(BytesFeedParser):
    """The ``compat32`` parser, reading a part below :data:`MAX_DEPTH` levels as text.

    The library parses nested parts recursively: thousands of levels exhaust the stack
    and the whole message would be lost, headers included.
    """

    def __init__(self) -> None:
        super().__init__(policy=_POLICY)

    def _new_message(self) -> None:
        super()._new_message()  # type: ignore[misc]
        if len(self._msgstack) > MAX_DEPTH:  # type: ignore[attr-defined]
            # Only these few parts change class: the others keep the library's own methods.
            self._cur.__class__ = _FlatPart  # type: ignore[attr-defined]


def _parse(raw: bytes, lifted: tuple[Run, ...] = ()) -> Message:
    parser = _CappedParser()
    position = 0
    with memoryview(raw) as view:
        for run in lifted:
            _feed(parser, view, position, run.start)
            parser.feed(run.line)
            position = run.end
        _feed(parser, view, position, len(raw))
    return parser.close()


def _feed(parser: BytesFeedParser, view: memoryview, start: int, end: int) -> None:
    for offset in range(start, end, _FEED_SLICE):
        parser.feed(view[offset : min(offset + _FEED_SLICE, end)].tobytes())


def _lifted_leaves(message: Message, lifted: LiftedBodies) -> dict[Message, Run] | None:
    leaves: dict[Message, Run] = {}
    for leaf in _leaves(message):
        text = _base64_text(leaf)
        if text is None:
            continue
        tokens = lifted.token.findall(text)
        if not tokens:
            continue
        rest = lifted.token.sub("", text)
        if len(tokens) > 1 or not rest.isascii() or _BASE64_CHARACTER.search(rest):
            return None
        leaves[leaf.part] = lifted.runs[int(tokens[0])]
    # Every token must be accounted for; one elsewhere means the text of some part changed.
    if len(set(leaves.values())) != len(lifted.runs):
        return None
    return leaves


def _decode_run(raw: bytes, run: Run) -> bytes:
    """What :func:`_decode_base64` gives for the parser's text of a leaf holding ``run``.

    Besides the run, that text holds only ASCII that base64 decoding skips (line breaks,
    spaces), so decoding the run from ``raw`` gives the same bytes without a copy of it.
    """
    with memoryview(raw)[run.start : run.body_end] as body:
        try:
            return binascii.a2b_base64(body)
        except (binascii.Error, ValueError):
            return _decode_base64(str(body, "ascii"))


def message_key(
    raw: bytes,
    *,
    folder: str,
    uid: int | None = None,
    uidvalidity: int | None = None,
    uidl: str | None = None,
) -> str:
    """A file-name-safe key unique to one message, naming its attachments folder.

    IMAP: ``<folder>-<uidvalidity>-<uid>`` (UIDs are unique only per folder and
    UIDVALIDITY), or ``<folder>-<uid>`` without UIDVALIDITY; POP3: ``pop3-<uidl>``;
    otherwise ``sha256-<first 16 hex digits>`` of the raw bytes. Characters a file name
    cannot hold are replaced, and a short hash of the original keeps such keys distinct.

    >>> message_key(b"...", folder="INBOX", uid=42, uidvalidity=1700000000)
    'INBOX-1700000000-42'
    """
    if uid is not None:
        parts = [folder, uidvalidity, uid] if uidvalidity is not None else [folder, uid]
        return _safe_key("-".join(map(str, parts)))
    if uidl is not None:
        return _safe_key(f"pop3-{uidl}")
    return f"sha256-{hashlib.sha256(raw).hexdigest()[:16]}"


def _safe_key(key: str) -> str:
    safe = safe_filename(key, fallback="message")
    if safe == key:
        return key
    # Two keys that differ only in unsafe characters must not share a folder: the hash
    # suffix must survive the byte limit of a file name, however wide the characters.
    digest = hashlib.sha256(key.encode("utf-8", "replace")).hexdigest()[:8]
    return shorten_filename(safe[:100], "", suffix=f"-{digest}")


def decode_bytes(data: bytes, charset: str | None = None) -> str:
    """Decode bytes of an email to text, whatever the declared charset claims.

    Tries the declared ``charset`` (or its common superset, such as windows-1252 for
    ISO-8859-1), then UTF-8, then windows-1252, and finally Latin-1, which cannot fail.
    """
    for candidate in (_codec(charset), "utf-8", "cp1252"):
        if candidate is None:
            continue
        try:
            text = data.decode(candidate)
        except (LookupError, ValueError):
            continue
        # A few codecs (utf-7, unicode_escape) can yield lone surrogates, which are not
        # valid UTF-8 and would break XCom serialisation.
        if not text.isascii() and _SURROGATES.search(text):
            text = _SURROGATES.sub("\ufffd", text)
        return text
    return data.decode("latin-1")


@functools.lru_cache(maxsize=256)
def _codec(charset: str | None) -> str | None:
    if not charset:
        return None
    label = charset.strip().strip("\"'").split("*", 1)[0].strip()
    try:
        name = codecs.lookup(label).name
    except (LookupError, ValueError):
        return None
    return _SUPERSETS.get(name, name)


def decode_header_value(value: str, charsets: Charsets = ()) -> str:
    """Decode one raw header value to a single line of text.

    Decodes RFC 2047 encoded words (``=?utf-8?q?Caf=C3=A9?=`` -> ``Café``) and raw 8-bit
    bytes, unfolds the header and replaces control characters (CR, LF, NUL...) by spaces.
    """
    return _one_line(_decode_words(_header_text(value, charsets)))


def _header_text(value: str, charsets: Charsets = ()) -> str:
    """A raw header value with its 8-bit bytes decoded, word by word.

    The parser keeps 8-bit header bytes as surrogate escapes. Each word (run of
    non-space characters) holding such bytes is decoded as UTF-8, else in the first of
    ``charsets`` (the message's declared charsets) that decodes it, else as UTF-8
    characters where they are valid and windows-1252 for the other bytes; only a byte
    that none of these can read becomes U+FFFD. One stray byte thus spoils one word at
    most, and a windows-1251 subject in a windows-1251 message reads as Cyrillic.
    """
    if value.isascii():
        return value
    if isinstance(charsets, _DeclaredCharsets):
        charsets = charsets.get()
    data = value.encode("utf-8", "surrogateescape")
    pieces = []
    position = 0
    for match in _EIGHT_BIT_WORD.finditer(data):
        pieces.append(data[position : match.start()].decode("ascii"))
        pieces.append(_decode_8bit_word(match.group(), charsets))
        position = match.end()
    pieces.append(data[position:].decode("ascii"))
    return "".join(pieces)


_EIGHT_BIT_WORD = re.compile(rb"[^\s\x80-\xff]*[\x80-\xff][^\s]*")
_UTF8_CHARACTER = re.compile(
    rb"[\xc2-\xdf][\x80-\xbf]|\xe0[\xa0-\xbf][\x80-\xbf]|[\xe1-\xec\xee\xef][\x80-\xbf]{2}"
    rb"|\xed[\x80-\x9f][\x80-\xbf]|\xf0[\x90-\xbf][\x80-\xbf]{2}|[\xf1-\xf3][\x80-\xbf]{3}"
    rb"|\xf4[\x80-\x8f][\x80-\xbf]{2}"
)


def _decode_8bit_word(word: bytes, charsets: tuple[str, ...]) -> str:
    for charset in ("utf-8", *charsets):
        try:
            return word.decode(charset)
        except (LookupError, ValueError):
            continue
    pieces = []
    position = 0
    for match in _UTF8_CHARACTER.finditer(word):
        pieces.append(word[position : match.start()].decode("cp1252", "replace"))
        pieces.append(match.group().decode("utf-8"))
        position = match.end()
    pieces.append(word[position:].decode("cp1252", "replace"))
    return "".join(pieces)


class _DeclaredCharsets:
    """The message's declared charsets, looked up only once a header holds 8-bit bytes."""

    __slots__ = ("_found", "_leaves", "_message")

    def __init__(self, message: Message, leaves: list[_Leaf]) -> None:
        self._message = message
        self._leaves = leaves
        self._found: tuple[str, ...] | None = None

    def get(self) -> tuple[str, ...]:
        if self._found is None:
            self._found = _declared_charsets(self._message, self._leaves)
        return self._found


Charsets = tuple[str, ...] | _DeclaredCharsets


def _declared_charsets(message: Message, leaves: list[_Leaf]) -> tuple[str, ...]:
    """The charsets the message declares (its own, then its parts'), for 8-bit headers.

    Only charsets that keep ASCII as ASCII: a header is decoded word by word.
    """
    found: list[str] = []
    for label in [message.get_param("charset")] + [leaf.charset() for leaf in leaves]:
        if not isinstance(label, str):
            continue
        codec = _codec(label)
        if codec is not None and codec not in found and _keeps_ascii(codec):
            found.append(codec)
    return tuple(found)


@functools.lru_cache(maxsize=64)
def _keeps_ascii(codec: str) -> bool:
    sample = "Subject: Re: a-z 0-9 <a@b.example> =?."
    try:
        return sample.encode(codec) == sample.encode("ascii")
    except (LookupError, ValueError):
        return False


def _decode_words(value: str) -> str:
    if "=?" not in value:
        return value
    pieces: list[str] = []
    pending = bytearray()
    pending_charset: str | None = None
    position = 0
    after_word = False

    def flush() -> None:
        nonlocal pending_charset
        if pending_charset is not None:
            pieces.append(decode_bytes(bytes(pending), pending_charset))
            pending.clear()
            pending_charset = None

    for match in _ENCODED_WORD.finditer(value):
        between = value[position : match.start()]
        position = match.end()
        if between and not (after_word and between.isspace()):
            flush()
            pieces.append(between)
        charset = match.group(1).split("*", 1)[0].lower()
        data = _decode_word(match.group(2), match.group(3))
        if data is None:
            flush()
            pieces.append(match.group(0))
            after_word = False
            continue
        if charset != pending_charset:
            # Adjacent words in one charset are joined first: senders split multi-byte
            # characters across words.
            flush()
            pending_charset = charset
        pending.extend(data)
        after_word = True
    flush()
    pieces.append(value[position:])
    return "".join(pieces)


def _decode_word(encoding: str, text: str) -> bytes | None:
    try:
        if encoding in "qQ":
            return binascii.a2b_qp(text.encode("ascii", "ignore"), header=True)
        data = _decode_base64(text)
    except (binascii.Error, ValueError):
        return None
    # Nothing decodable in a non-empty word: showing it raw tells the reader more.
    return data if data or not text else None


def _decode_base64(text: str) -> bytes:
    try:
        return binascii.a2b_base64(text)
    except (binascii.Error, ValueError):
        # Non-ASCII junk or missing padding: keep the base64 alphabet and pad it.
        cleaned = re.sub(rb"[^A-Za-z0-9+/]", b"", text.encode("ascii", "ignore"))
        if len(cleaned) % 4 == 1:
            cleaned = cleaned[:-1]  # a lone trailing character carries no whole byte
        return binascii.a2b_base64(cleaned + b"=" * (-len(cleaned) % 4))


def _one_line(text: str) -> str:
    if text.isprintable():  # no control character, so nothing to unfold or replace
        return text.strip()
    return _CONTROL.sub(" ", _FOLDING.sub("", text)).strip()


def _record_headers(message: Message) -> dict[str, list[str]]:
    """The values of the headers a record reads, by lower-case name, in one pass."""
    headers: dict[str, list[str]] = {}
    for name, value in message.items():
        key = name.lower()
        if key in _RECORD_HEADERS:
            headers.setdefault(key, []).append(str(value))
    return headers


def _header_fields(message: Message, key: str, charsets: Charsets) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    headers = _record_headers(message)
    for field, reader in _HEADER_READERS.items():
        try:
            value = reader(headers, charsets)
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
        moment = parsedate_to_datetime(_one_line(_header_text(values[0], charsets)))
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if moment.tzinfo is None:
        # "-0000" means UTC with no statement about the sender's zone (RFC 5322 3.3).
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.isoformat()


def _addresses(headers: dict[str, list[str]], charsets: Charsets, name: str) -> str:
    texts = [_header_text(value, charsets) for value in headers.get(name, ())]
    if not texts:
        return ""
    try:
        # Split before decoding: a decoded name may hold the commas that separate addresses.
        pairs = _split_addresses(texts)
    except Exception:
        pairs = []
    formatted = []
    for display_name, address in pairs:
        display_name = _one_line(_decode_words(display_name))
        address = _one_line(_decode_words(address))
        if address or display_name:
            formatted.append(_format_address(display_name, address))
    if formatted:
        return ", ".join(formatted)
    return _one_line(_decode_words(" ".join(texts)))


_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_ADDR_SPEC = rf"{_ATOM}(?:\.{_ATOM})*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*"
_PLAIN_ADDRESS = (
    rf"[ \t]*(?:(?P<bare>{_ADDR_SPEC})"
    rf"|(?:(?P<phrase>{_ATOM}(?: {_ATOM})*)|\"(?P<quoted>[^\"\\\r\n]+)\")?"
    rf"[ \t]*<(?P<angle>{_ADDR_SPEC})>)"
    r"[ \t]*"
)
_PLAIN_ADDRESS_ENTRY = re.compile(rf"{_PLAIN_ADDRESS}(?P<end>,|$)")


def _split_addresses(texts: list[str]) -> list[tuple[str, str]]:
    """``email.utils.getaddresses(texts)``, without its parser for the usual case.

    ``getaddresses`` reads a header character by character, which makes it the most
    expensive step of a record. A list of plain entries (``a@b.org``, ``Jane Doe <a@b.org>``,
    ``"Doe, Jane" <a@b.org>``, ``<a@b.org>``) is split by a regular expression, giving
    exactly what ``getaddresses`` gives (``tests/unit/test_parse_addresses.py`` compares the
    two on random lists); anything else goes to ``getaddresses``.
    """
    joined = ", ".join(texts)
    if not joined.isascii():
        return getaddresses(texts)
    pairs: list[tuple[str, str]] = []
    position = 0
    while position < len(joined) or not pairs:
        match = _PLAIN_ADDRESS_ENTRY.match(joined, position)
        if match is None:
            return getaddresses(texts)
        bare, phrase, quoted, angle, end = match.group("bare", "phrase", "quoted", "angle", "end")
        pairs.append(("", bare) if bare is not None else (phrase or quoted or "", angle))
        position = match.end()
        if end and position == len(joined):  # a trailing comma: leave it to getaddresses
            return getaddresses(texts)
    return pairs


def _format_address(display_name: str, address: str) -> str:
    if not display_name:
        return address
    if _NEEDS_QUOTES.search(display_name):
        escaped = display_name.replace("\\", "\\\\").replace('"', '\\"')
        display_name = f'"{escaped}"'
    return f"{display_name} <{address}>" if address else display_name


_HEADER_READERS: dict[str, Callable[[dict[str, list[str]], Charsets], str | None]] = {
    "message_id": _message_id,
    "from": functools.partial(_addresses, name="from"),
    "to": functools.partial(_addresses, name="to"),
    "cc": functools.partial(_addresses, name="cc"),
    "bcc": functools.partial(_addresses, name="bcc"),
    "reply_to": functools.partial(_addresses, name="reply-to"),
    "subject": _subject,
    "date": _date,
}
_RECORD_HEADERS = frozenset(
    {"message-id", "from", "to", "cc", "bcc", "reply-to", "subject", "date"}
)


class _Leaf:
    """One part that holds content, with the MIME headers a record reads, each read once.

    The values are exactly what ``Message.get_content_type()`` and friends return; asking
    the part each time would scan all its headers again for every question.
    """

    __slots__ = ("_mime_headers", "_params", "content_type", "maintype", "part")

    def __init__(self, part: Message, mime_headers: dict[str, str], content_type: str) -> None:
        self.part = part
        self.content_type = content_type
        self.maintype = content_type.split("/")[0]
        self._mime_headers = mime_headers
        self._params: dict[str, list[tuple[str, Any]]] = {}

    def header(self, name: str) -> str | None:
        """The first value of a ``content-*`` header (lower-case name), or ``None``."""
        return self._mime_headers.get(name)

    def param(self, name: str, header: str) -> Any:
        """``part.get_param(name, None, header)``, the header's parameters parsed once."""
        if header not in self._mime_headers:
            return None
        params = self._params.get(header)
        if params is None:
            params = self._params[header] = self.part.get_params([], header)
        for key, value in params:
            if key.lower() == name:
                return value
        return None

    def charset(self) -> str | None:
        """``part.get_content_charset()``."""
        charset = self.param("charset", "content-type")
        if charset is None:
            return None
        if isinstance(charset, tuple):
            # RFC 2231 encoded, as the email library decodes it.
            try:
                charset = str(charset[2].encode("raw-unicode-escape"), charset[0] or "us-ascii")
            except (LookupError, UnicodeError):
                charset = charset[2]
        if not charset.isascii():
            return None
        return str(charset.lower())


_MIME_HEADERS = frozenset({"content-type", "content-disposition", "content-transfer-encoding"})


def _leaves(message: Message) -> Iterator[_Leaf]:
    """Every part that holds content, in order; a forwarded message counts as one part."""
    stack = [message]
    while stack:
        part = stack.pop()
        mime_headers: dict[str, str] = {}
        for name, value in part.items():
            key = name.lower()
            if key in _MIME_HEADERS and key not in mime_headers:
                mime_headers[key] = value
        content_type = _content_type(part, mime_headers.get("content-type"))
        if part.is_multipart() and not content_type.startswith("message/"):
            payload = part.get_payload()
            stack.extend(reversed([item for item in payload if isinstance(item, Message)]))
        else:
            yield _Leaf(part, mime_headers, content_type)


def _content_type(part: Message, value: str | None) -> str:
    """``part.get_content_type()``, given its first Content-Type value."""
    if value is None:
        return part.get_default_type()
    content_type = str(value).partition(";")[0].strip().lower()
    return content_type if content_type.count("/") == 1 else "text/plain"


def _classify(leaf: _Leaf, charsets: Charsets = ()) -> tuple[str, str | None, str]:
    """``("text" | "html" | "attachment", filename, content type)`` of one leaf part."""
    content_type = _one_line(_header_text(leaf.content_type))
    if leaf.maintype == "multipart":
        # A multipart whose boundary never appears: its body is all that is left.
        content_type = "text/plain"
    filename = _filename(leaf, charsets)
    disposition = leaf.header("content-disposition")
    if disposition is not None:
        disposition = str(disposition).partition(";")[0].strip().lower()
    if disposition != "attachment" and filename is None:
        if content_type == "text/plain":
            return "text", None, content_type
        if content_type == "text/html":
            return "html", None, content_type
    return "attachment", filename, content_type


def _filename(leaf: _Leaf, charsets: Charsets) -> str | None:
    for param, header in (("filename", "content-disposition"), ("name", "content-type")):
        try:
            value = leaf.param(param, header)
        except Exception:
            continue
        if value is None:
            continue
        if isinstance(value, tuple):
            # RFC 2231: (charset, language, percent-decoded text as Latin-1 code points).
            charset, _language, text = value
            name = decode_bytes(str(text).encode("latin-1", "replace"), charset or None)
        else:
            name = _decode_words(_header_text(str(value), charsets))
        name = _one_line(name)
        if name:
            return name
    return None


def _payload_bytes(leaf: _Leaf) -> bytes:
    """The decoded bytes of one leaf part, decoding it once and copying it as little as we can."""
    part = leaf.part
    if leaf.maintype == "message" and part.is_multipart():
        buffer = io.BytesIO()
        generator = BytesGenerator(buffer, mangle_from_=False, policy=_FLATTEN_POLICY)
        for inner in part.get_payload():
            if isinstance(inner, Message):
                generator.flatten(inner)
        return buffer.getvalue()
    text = _base64_text(leaf)
    if text is not None:
        # Large attachments are base64: decode the parser's text directly, no extra copy.
        return _decode_base64(text)
    data = part.get_payload(decode=True)
    return data if isinstance(data, bytes) else b""


def _base64_text(leaf: _Leaf) -> str | None:
    """The undecoded text of a leaf whose bytes are its base64 text decoded, else ``None``."""
    if leaf.maintype == "message" and leaf.part.is_multipart():
        return None
    encoding = leaf.header("content-transfer-encoding")
    if encoding is None or not _header_text(str(encoding)).strip().lower().startswith("base64"):
        return None
    try:
        text = leaf.part.get_payload()
    except (LookupError, ValueError):  # a charset parameter it could not look up
        return None
    return text if isinstance(text, str) else None


def _part_text(leaf: _Leaf, data: bytes) -> str:
    text = decode_bytes(data, leaf.charset())
    return text.replace("\r\n", "\n")


_BLOCK_TAGS = frozenset(
    {
        "address", "article", "aside", "blockquote", "center", "dd", "details", "div", "dl",
        "dt", "fieldset", "figcaption", "figure", "footer", "form", "h1", "h2", "h3", "h4",
        "h5", "h6", "header", "hr", "li", "main", "nav", "ol", "p", "pre", "section",
        "summary", "table", "tbody", "thead", "tfoot", "tr", "ul",
    }
)  # fmt: skip
_PARAGRAPH_TAGS = frozenset(
    {"blockquote", "h1", "h2", "h3", "h4", "h5", "h6", "ol", "p", "pre", "table", "ul"}
)
_HIDDEN_TAGS = frozenset({"script", "style", "template", "title"})


class _TextRenderer(HTMLParser):
    """Collects the visible text of an HTML body, one line per block element."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.chunks: list[str] = []
        self._hidden = 0
        self._preformatted = 0
        # Line breaks owed by block boundaries; "</li><li>" owes one break, not two.
        self._pending_breaks = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _HIDDEN_TAGS:
            self._hidden += 1
        elif tag == "br":
            self._write("\n")
        elif tag in ("td", "th") and not self._at_line_start():
            self._write("\t")
        elif tag in _BLOCK_TAGS:
            self._break_line(tag)
        if tag == "pre":
            self._preformatted += 1

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in _HIDDEN_TAGS:
            self.handle_starttag(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        if tag in _HIDDEN_TAGS:
            self._hidden = max(0, self._hidden - 1)
        elif tag in _BLOCK_TAGS:
            self._break_line(tag)
        if tag == "pre":
            self._preformatted = max(0, self._preformatted - 1)

    def handle_data(self, data: str) -> None:
        if self._hidden:
            return
        data = data.replace("\xa0", " ")
        if not self._preformatted:
            data = _SPACES.sub(" ", data)
            if self._at_line_start():
                data = data.lstrip(" ")
            if not data:
                return
        self._write(data)

    def _break_line(self, tag: str) -> None:
        breaks = 2 if tag in _PARAGRAPH_TAGS else 1
        self._pending_breaks = max(self._pending_breaks, breaks)

    def _at_line_start(self) -> bool:
        return bool(self._pending_breaks) or not self.chunks or self.chunks[-1].endswith("\n")

    def _write(self, text: str) -> None:
        if self._pending_breaks:
            self.chunks.append("\n" * self._pending_breaks)
            self._pending_breaks = 0
        self.chunks.append(text)


def html_to_text(html: str) -> str:
    """A plain-text rendering of an HTML body: visible text, one line per block element.

    Scripts, styles and the title are dropped, entities decoded, runs of spaces collapsed
    (except inside ``<pre>``); ``<br>``, paragraphs, list items, table rows and other block
    elements start new lines.

    >>> html_to_text("<p>Hello&nbsp;<b>Jane</b></p><p>Bye</p>")
    'Hello Jane\\n\\nBye'
    """
    renderer = _TextRenderer()
    try:
        renderer.feed(html)
        renderer.close()
    except Exception as err:  # html.parser is lenient; keep what it read if it gives up
        log.warning("HTML body could not be fully rendered as text (%s).", type(err).__name__)
    lines = (line.rstrip(" \t") for line in "".join(renderer.chunks).split("\n"))
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip("\n")
