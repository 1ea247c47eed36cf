"""Email text to ``str``: charsets, raw 8-bit header bytes, RFC 2047 encoded words, base64.

Everything here is best effort and never raises for what a message contains: an unknown
or lying charset falls back to UTF-8, windows-1252 and finally Latin-1.
"""

from __future__ import annotations

import binascii
import codecs
import functools
import re
from collections.abc import Sequence
from email.message import Message
from typing import Protocol

_ENCODED_WORD = re.compile(r"=\?([^?\s]+)\?([bBqQ])\?([^?]*)\?=")
_FOLDING = re.compile(r"\r?\n(?=[ \t])")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
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
    return one_line(decode_words(header_text(value, charsets)))


def header_text(value: str, charsets: Charsets = ()) -> str:
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
    if isinstance(charsets, DeclaredCharsets):
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


class _DeclaresCharset(Protocol):
    """A leaf part (``mime.Leaf``): what its Content-Type declares as charset."""

    def charset(self) -> str | None: ...


class DeclaredCharsets:
    """The message's declared charsets, looked up only once a header holds 8-bit bytes."""

    __slots__ = ("_found", "_leaves", "_message")

    def __init__(self, message: Message, leaves: Sequence[_DeclaresCharset]) -> None:
        self._message = message
        self._leaves = leaves
        self._found: tuple[str, ...] | None = None

    def get(self) -> tuple[str, ...]:
        if self._found is None:
            self._found = _declared_charsets(self._message, self._leaves)
        return self._found


Charsets = tuple[str, ...] | DeclaredCharsets


def _declared_charsets(message: Message, leaves: Sequence[_DeclaresCharset]) -> tuple[str, ...]:
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


def decode_words(value: str) -> str:
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
        data = decode_base64(text)
    except (binascii.Error, ValueError):
        return None
    # Nothing decodable in a non-empty word: showing it raw tells the reader more.
    return data if data or not text else None


def decode_base64(text: str) -> bytes:
    try:
        return binascii.a2b_base64(text)
    except (binascii.Error, ValueError):
        # Non-ASCII junk or missing padding: keep the base64 alphabet and pad it.
        cleaned = re.sub(rb"[^A-Za-z0-9+/]", b"", text.encode("ascii", "ignore"))
        if len(cleaned) % 4 == 1:
            cleaned = cleaned[:-1]  # a lone trailing character carries no whole byte
        return binascii.a2b_base64(cleaned + b"=" * (-len(cleaned) % 4))


def one_line(text: str) -> str:
    if text.isprintable():  # no control character, so nothing to unfold or replace
        return text.strip()
    return _CONTROL.sub(" ", _FOLDING.sub("", text)).strip()
