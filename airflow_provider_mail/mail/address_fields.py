"""Address headers (From, To, Cc, Bcc, Reply-To) as the record shows them.

``Jane Doe <jane@example.com>, "Doe, John" <john@example.com>``: each address decoded
(RFC 2047, raw 8-bit bytes), on one line, joined with ``, ``.
"""

from __future__ import annotations

import functools
import re
from email.utils import getaddresses

from airflow_provider_mail.mail.decoding import Charsets, decode_words, header_text, one_line

_NEEDS_QUOTES = re.compile(r'[,;:<>@"()\[\]\\]')


def address_field(headers: dict[str, list[str]], charsets: Charsets, name: str) -> str:
    values = headers.get(name)
    if not values:
        return ""
    if len(values) == 1 and len(values[0]) <= _REMEMBERED_CHARS and values[0].isascii():
        # An ASCII value reads the same in every message (no charset guess is involved),
        # and the same To, From and Cc recur across a mailbox.
        return _remembered(values[0])
    return _formatted([header_text(value, charsets) for value in values])


# Values up to this long are remembered, the last _REMEMBERED of them: at most about 1 MB.
_REMEMBERED_CHARS = 2048
_REMEMBERED = 512


@functools.lru_cache(maxsize=_REMEMBERED)
def _remembered(value: str) -> str:
    return _formatted([value])


def _formatted(texts: list[str]) -> str:
    try:
        # Split before decoding: a decoded name may hold the commas that separate addresses.
        pairs = split_addresses(texts)
    except Exception:
        pairs = []
    formatted = []
    for display_name, address in pairs:
        display_name = one_line(decode_words(display_name))
        address = one_line(decode_words(address))
        if address or display_name:
            formatted.append(format_address(display_name, address))
    if formatted:
        return ", ".join(formatted)
    return one_line(decode_words(" ".join(texts)))


_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_ADDR_SPEC = rf"{_ATOM}(?:\.{_ATOM})*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*"
_PLAIN_ADDRESS = (
    rf"[ \t]*(?:(?P<bare>{_ADDR_SPEC})"
    rf"|(?:(?P<phrase>{_ATOM}(?: {_ATOM})*)|\"(?P<quoted>[^\"\\\r\n]+)\")?"
    rf"[ \t]*<(?P<angle>{_ADDR_SPEC})>)"
    r"[ \t]*"
)
_PLAIN_ADDRESS_ENTRY = re.compile(rf"{_PLAIN_ADDRESS}(?P<end>,|$)")


def split_addresses(texts: list[str]) -> list[tuple[str, str]]:
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


def format_address(display_name: str, address: str) -> str:
    if not display_name:
        return address
    if _NEEDS_QUOTES.search(display_name):
        escaped = display_name.replace("\\", "\\\\").replace('"', '\\"')
        display_name = f'"{escaped}"'
    return f"{display_name} <{address}>" if address else display_name
