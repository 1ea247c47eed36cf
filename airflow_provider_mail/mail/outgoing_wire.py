"""The common shapes of an outgoing email written straight to bytes, without the email library.

Composing with ``EmailMessage`` builds a parse tree for every header, folds each one back
and walks the MIME tree to write it out: about 3 ms of CPU per email, which is most of the
cost of sending over a fast link. The emails a DAG sends are nearly always one shape: plain
addresses, a short subject, a plain-text and/or HTML body with short lines, no
attachments. This module writes exactly that shape directly (the bytes are the ones the
library writes, header for header: ``tests/unit/test_outgoing_wire.py`` compares them on a
corpus), and answers ``None`` for anything else, which :mod:`~airflow_provider_mail.mail.compose`
then builds with the library as before.

Everything here works on values :func:`~airflow_provider_mail.mail.compose.compose_email`
has validated already (no line breaks, no control characters); :func:`check_written`
still reads the written header block back, as a receiver would, before anything is sent.
"""

from __future__ import annotations

import base64
import random
import re
import sys
from collections.abc import Iterable, Sequence
from email.headerregistry import Address

# RFC 5322 atext, and dot-atoms of it: what an address may hold without quoting.
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_DOT_ATOM = rf"{_ATEXT}(?:\.{_ATEXT})*"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_DOMAIN = rf"{_LABEL}(?:\.{_LABEL})*"
_BARE = re.compile(rf"({_DOT_ATOM})@({_DOMAIN})")
# A display name of atoms separated by single spaces: written as it is, never quoted.
_PHRASE = rf"{_ATEXT}(?: {_ATEXT})*"
_NAME = re.compile(_PHRASE)
_NAMED = re.compile(rf"({_PHRASE}) <({_DOT_ATOM})@({_DOMAIN})>")

#: RFC 5322's recommended line length, and the library's (``policy.max_line_length``).
LINE = 78
# RFC 2047: a line holding encoded words is at most 76 characters; "=?utf-8?b?" and "?="
# take 12 of a word's, base64 the rest (4 characters per 3 bytes).
_ENCODED_LINE = 76
_WORD_OVERHEAD = 12
# Longer addresses are left to the library, which folds inside them (lines stay < 998).
_LONGEST_ADDRESS = 900
_ENCODED_WORD = re.compile(r"=\?utf-8\?b\?([A-Za-z0-9+/=]*)\?=")
_ENCODED_RUN = re.compile(
    r"=\?utf-8\?b\?[A-Za-z0-9+/=]*\?=(?:[ \t]+=\?utf-8\?b\?[A-Za-z0-9+/=]*\?=)*"
)
# The generator's boundary: 15 "=", the random number padded to the width of sys.maxsize, "==".
_BOUNDARY_DIGITS = len(repr(sys.maxsize - 1))


def simple_addresses(texts: Iterable[str]) -> tuple[Address, ...] | None:
    """The addresses of ``texts`` when every one is plain, else ``None``.

    Plain is ``local@domain`` or ``Display Name <local@domain>`` in ASCII, the name made of
    atoms (no quotes, commas, dots or other specials), pieces separated by commas. Whatever
    this accepts, :func:`~airflow_provider_mail.mail.addresses.parse_addresses` accepts
    with the same result (``tests/unit/test_outgoing_wire.py`` checks it on generated and
    hostile input); everything else goes to that parser.
    """
    result: list[Address] = []
    for text in texts:
        if not text.strip():
            continue
        for piece in text.strip().split(","):
            piece = piece.strip(" \t")
            bare = _BARE.fullmatch(piece)
            if bare is not None:
                result.append(Address(username=bare[1], domain=bare[2]))
                continue
            named = _NAMED.fullmatch(piece)
            if named is None or "=?" in piece:
                return None
            result.append(Address(named[1], named[2], named[3]))
    return tuple(result)


def address_text(address: Address) -> str:
    """``Name <local@domain>`` or ``local@domain``, as the library writes a plain address."""
    spec = f"{address.username}@{address.domain}"
    return f"{address.display_name} <{spec}>" if address.display_name else spec


def encoded_words(text: str, first: int) -> str | None:
    """``text`` as RFC 2047 ``utf-8`` base64 words, whole characters each, one per line.

    ``first`` is the room on the first line (after the header name); every line stays
    within 76 characters, as RFC 2047 asks. ``None`` when not even one word fits there.
    """
    room = first
    if room < _WORD_OVERHEAD + 8:
        return None
    words: list[str] = []
    chunk = bytearray()
    for char in text:
        data = char.encode("utf-8")
        if len(chunk) + len(data) > (room - _WORD_OVERHEAD) // 4 * 3:
            words.append(base64.b64encode(chunk).decode("ascii"))
            chunk = bytearray()
            room = _ENCODED_LINE - 1  # after the folding space
        chunk += data
    words.append(base64.b64encode(chunk).decode("ascii"))
    return "\r\n ".join(f"=?utf-8?b?{word}?=" for word in words)


def header_line(name: str, text: str) -> str | None:
    """One header (``Name: value`` and CRLF) written without the library, or ``None``.

    Short printable ASCII is written as it is (the library writes it the same); printable
    non-ASCII as encoded words. Text holding ``=?``, long ASCII text (it needs folding) and
    anything unprintable are left to the library.
    """
    if "=?" in text or not text.isprintable() or text != text.strip():
        return None
    if text.isascii():
        return f"{name}: {text}\r\n" if len(name) + 2 + len(text) <= LINE else None
    words = encoded_words(text, _ENCODED_LINE - len(name) - 2)
    return None if words is None else f"{name}: {words}\r\n"


def address_line(name: str, addresses: Sequence[Address]) -> str | None:
    """An address header, folded after commas as the library folds it; ``None`` if too long."""
    texts = [address_text(address) for address in addresses]
    if any(len(text) > _LONGEST_ADDRESS for text in texts):
        return None
    lines: list[str] = []
    line = f"{name}: {texts[0]}"
    for position, text in enumerate(texts[1:], start=2):
        longer = f"{line}, {text}"
        if len(longer) + (position < len(texts)) <= LINE:
            line = longer
        else:
            lines.append(line + ",")
            line = " " + text
    return "\r\n".join([*lines, line]) + "\r\n"


def text_body(text: str) -> tuple[str, bytes] | None:
    """``(Content-Transfer-Encoding, body)`` as the library encodes a text part, or ``None``.

    Lines within 78 bytes travel as they are (``7bit``, or ``8bit`` with UTF-8), every
    line ending made CRLF; longer lines need quoted-printable or base64, left to the library.
    """
    try:
        lines = text.encode("utf-8").splitlines()
    except UnicodeEncodeError:
        return None
    if max(map(len, lines), default=0) > LINE:
        return None
    body = b"\r\n".join(lines) + b"\r\n"
    return ("7bit" if body.isascii() else "8bit"), body


def _part_head(subtype: str, encoding: str) -> bytes:
    return (
        f'Content-Type: text/{subtype}; charset="utf-8"\r\n'
        f"Content-Transfer-Encoding: {encoding}\r\n"
    ).encode("ascii")


def new_boundary(bodies: Sequence[bytes]) -> str:
    """A boundary in the library's form that occurs in none of ``bodies``."""
    while True:
        boundary = "=" * 15 + str(random.randrange(sys.maxsize)).zfill(_BOUNDARY_DIGITS) + "=="
        if not any(b"--" + boundary.encode("ascii") in body for body in bodies):
            return boundary


def write(
    headers: Sequence[str], text: str, html: str, *, boundary: str | None = None
) -> bytes | None:
    """The whole email: ``headers`` (each a :func:`header_line`), then the body.

    ``html`` and ``text`` both set make ``multipart/alternative``; only ``html``, a
    ``text/html`` email; otherwise ``text/plain``, as ``compose_email`` has always built them.
    ``None`` when a body has lines too long to travel as they are.
    """
    head = "".join(headers).encode("ascii")
    mime = b"MIME-Version: 1.0\r\n"
    if html.strip() and text.strip():
        plain, rich = text_body(text), text_body(html)
        if plain is None or rich is None:
            return None
        boundary = boundary or new_boundary((plain[1], rich[1]))
        separator = f"\r\n--{boundary}\r\n".encode("ascii")
        return b"".join(
            (
                head,
                mime,
                f'Content-Type: multipart/alternative;\r\n boundary="{boundary}"\r\n\r\n'.encode(
                    "ascii"
                ),
                separator[2:],
                _part_head("plain", plain[0]),
                b"\r\n",
                plain[1],
                separator,
                _part_head("html", rich[0]),
                mime,
                b"\r\n",
                rich[1],
                f"\r\n--{boundary}--\r\n".encode("ascii"),
            )
        )
    subtype, content = ("html", html) if html.strip() else ("plain", text)
    single = text_body(content)
    if single is None:
        return None
    return b"".join((head, _part_head(subtype, single[0]), mime, b"\r\n", single[1]))


def _decoded(value: str) -> str:
    """``value`` with each run of our encoded words decoded, as a receiver shows it."""

    def decode(run: re.Match[str]) -> str:
        data = b"".join(base64.b64decode(word) for word in _ENCODED_WORD.findall(run[0]))
        return data.decode("utf-8")

    return _ENCODED_RUN.sub(decode, value)


def check_written(headers: Sequence[tuple[str, str]], data: bytes) -> bool:
    """Whether ``data``'s header block reads back as exactly ``headers`` (name, text).

    A receiver splits the block at CRLF not followed by a space, unfolds, and decodes
    encoded words; this does the same, and every header must come back with its name, in
    order, and its text unchanged: nothing added, split off or decoded into something else.
    """
    block, _blank, _body = data.partition(b"\r\n\r\n")
    try:
        text = block.decode("ascii")
    except UnicodeDecodeError:
        return False
    if "\r" in text.replace("\r\n", "") or "\n" in text.replace("\r\n", ""):
        return False
    received: list[tuple[str, str]] = []
    for line in text.split("\r\n"):
        if line[:1] in (" ", "\t") and received:
            name, value = received[-1]
            received[-1] = (name, value + line)
            continue
        name, colon, value = line.partition(": ")
        if not colon:
            return False
        received.append((name, value))
    wanted = [*headers, *_MIME_HEADERS.get(len(received) - len(headers), ())]
    if len(received) != len(wanted):
        return False
    for (name, value), (wanted_name, wanted_text) in zip(received, wanted, strict=True):
        if name != wanted_name:
            return False
        if wanted_text is not None and _decoded(value) != wanted_text:
            return False
    return True


# The top-level MIME headers after the given ones: (name, text or None for "any").
_MIME_HEADERS: dict[int, tuple[tuple[str, str | None], ...]] = {
    2: (("MIME-Version", "1.0"), ("Content-Type", None)),
    3: (
        ("Content-Type", None),
        ("Content-Transfer-Encoding", None),
        ("MIME-Version", "1.0"),
    ),
}


def is_simple(address: Address) -> bool:
    """Whether ``address`` is one :func:`simple_addresses` accepts (written as it is)."""
    if _BARE.fullmatch(f"{address.username}@{address.domain}") is None:
        return False
    name = address.display_name
    return not name or (_NAME.fullmatch(name) is not None and "=?" not in name)
