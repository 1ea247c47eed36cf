"""The MIME walk: raw bytes -> parsed message -> the leaf parts and their decoded bytes.

It parses with the ``compat32`` policy (``email.policy.default`` builds a header object for
every header, which costs several times more per message; see ``benchmarks/parse.py``),
caps the nesting depth, lifts long base64 bodies of big messages out before parsing, and
reads each leaf's MIME headers once.
"""

from __future__ import annotations

import binascii
import io
import logging
import quopri
import re
from collections.abc import Iterator
from email.feedparser import BytesFeedParser
from email.generator import BytesGenerator
from email.message import Message
from email.policy import Compat32
from email.utils import unquote
from typing import Any

from airflow_provider_mail.mail.decoding import (
    Charsets,
    decode_base64,
    decode_bytes,
    decode_words,
    header_text,
    one_line,
)
from airflow_provider_mail.mail.large_bodies import LiftedBodies, Run, lift_large_bodies

log = logging.getLogger(__name__)


class _RawHeaders(Compat32):
    """``compat32`` that hands header values back untouched.

    Plain ``compat32`` wraps a value holding 8-bit bytes in a ``Header`` that can no
    longer be decoded faithfully; this keeps the bytes (as surrogate escapes) so that
    :func:`header_text` can decode them.
    """

    def header_fetch_parse(self, name: str, value: str) -> str:
        return value


class _Part(Message):
    """``Message`` that remembers its content type until its headers or default type change.

    The parser asks every part for its content type five times or more, and each answer
    scans all the part's headers; this answers the repeats at once. The remembered answer
    is checked against the header list, its length and the default type it was built from
    (``_headers`` and ``_default_type`` are the library's private attributes: the only
    in-place change that keeps all three, ``replace_header``, forgets it explicitly;
    ``tests/unit/test_parse.py`` compares the answers after every kind of change).
    """

    _content_type_memo: tuple[list[Any], int, str, str] | None = None

    def get_content_type(self) -> str:
        headers: list[Any] = self._headers  # type: ignore[attr-defined]
        default_type = self._default_type  # type: ignore[attr-defined]
        memo = self._content_type_memo
        if (
            memo is not None
            and memo[0] is headers
            and memo[1] == len(headers)
            and memo[2] == default_type
        ):
            return memo[3]
        content_type = super().get_content_type()
        self._content_type_memo = (headers, len(headers), default_type, content_type)
        return content_type

    def get_content_maintype(self) -> str:
        return self.get_content_type().partition("/")[0]

    def replace_header(self, _name: str, _value: Any) -> None:
        self._content_type_memo = None
        super().replace_header(_name, _value)

    def get_boundary(self, failobj: Any = None) -> Any:
        """``Message.get_boundary``, reading a header of plain parameters itself.

        The parser asks every multipart part for its boundary; the library's answer parses
        all the parameters of ``Content-Type`` through its RFC 2231 machinery, a tenth of
        a small message's parse. For a header of plain ``name=value`` parameters
        (:data:`_SIMPLE_PARAMS`) the answer is :func:`_simple_param`'s, unquoted as
        ``collapse_rfc2231_value`` unquotes it (``tests/unit/test_parse_fast_paths.py``
        compares the two on random headers).
        """
        value = self.get("content-type")
        if isinstance(value, str) and _simple_params(value):
            found = _simple_param(value, "boundary")
            return failobj if found is None else unquote(found).rstrip()
        return super().get_boundary(failobj)


_POLICY = _RawHeaders(linesep="\r\n", max_line_length=None, message_factory=_Part)


class _FlattenHeaders(_RawHeaders):
    """How a forwarded message is written back to bytes, with a short cut for plain headers.

    ``compat32`` folds every header through an ``email.header.Header``, the slowest step of
    writing a message. Without a line length limit, that gives back a one-line ASCII value
    unchanged, and a folded one of plain words (:data:`_FOLDED_HEADER`) line by line with
    CRLF line breaks (both checked against ``Header`` on random values in
    ``tests/unit/test_parse_unchanged.py``), so such a value is written as it is; anything
    else goes the usual way.
    """

    def fold_binary(self, name: str, value: str) -> bytes:
        if isinstance(value, str) and len(value) < _PLAIN_HEADER_LIMIT and value.isascii():
            if _LINE_BREAK.search(value) is None:
                return f"{name}: {value}\r\n".encode("ascii")
            if _FOLDED_HEADER.fullmatch(value):
                # Each folded line as it was, the line breaks as CRLF (``Header`` keeps the
                # whitespace that starts a continuation line and the words as they are).
                lines = "\r\n".join(value.splitlines())
                return f"{name}: {lines}\r\n".encode("ascii")
        return super().fold_binary(name, value)


# Far below Header's "no limit" of 1,000,000 characters, where it would start to wrap.
_PLAIN_HEADER_LIMIT = 50_000
# What ``str.splitlines`` splits an ASCII value at, as ``Header`` does.
_LINE_BREAK = re.compile(r"[\n\r\x0b\x0c\x1c-\x1e]")
# A folded header as senders write it (Received, DKIM-Signature...): visible words separated
# by spaces or tabs, every continuation line starting with them, no line ending in them.
_WORDS = r"[!-~]+(?:[ \t]+[!-~]+)*"
_FOLDED_HEADER = re.compile(rf"{_WORDS}(?:\r?\n[ \t]+{_WORDS})*")
_FLATTEN_POLICY = _FlattenHeaders(linesep="\r\n", max_line_length=None)
# Fed in slices, the parser never holds the whole message as one string and as a list of
# lines at once: a 50 MB message peaks near 140 MB instead of 400 MB.
_FEED_SLICE = 64 * 1024
# From this size on, long base64 bodies are lifted out before parsing and decoded straight
# from the raw bytes (see large_bodies.py): a 50 MB message then peaks near 1.8 times its
# size (the raw bytes and the decoded attachment) instead of 3.8 times.
LARGE_MESSAGE = 8 * 2**20
_LARGE_BODY = 256 * 1024
_BASE64_CHARACTER = re.compile(r"[A-Za-z0-9+/=]")

#: MIME levels parsed; a part deeper than this is read as text (the record's
#: ``truncated`` field then says ``{"depth": MAX_DEPTH}``).
MAX_DEPTH = 64


def parse_message(raw: bytes) -> tuple[Message, dict[Message, Run]]:
    """The parsed message, and the leaves whose base64 body was lifted out of ``raw``.

    A big message is parsed without its long base64 runs, as long as each run then lands,
    alone, in the text of a leaf that :func:`payload_bytes` decodes as base64. Anything
    else (a run in a preamble, in a forwarded message, in a quoted-printable part, beside
    other base64 text) parses ``raw`` as usual, so the record is always the same.
    """
    if len(raw) >= LARGE_MESSAGE:
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


class FlatPart(_Part):
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
            self._cur.__class__ = FlatPart  # type: ignore[attr-defined]


def _parse(raw: bytes, lifted: tuple[Run, ...] = ()) -> Message:
    parser = _CappedParser()
    if not lifted and len(raw) <= _FEED_SLICE:
        parser.feed(raw)
        return parser.close()
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
    for leaf in iter_leaves(message):
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


def decode_run(raw: bytes, run: Run) -> bytes:
    """What :func:`decode_base64` gives for the parser's text of a leaf holding ``run``.

    Besides the run, that text holds only ASCII that base64 decoding skips (line breaks,
    spaces), so decoding the run from ``raw`` gives the same bytes without a copy of it.
    """
    with memoryview(raw)[run.start : run.body_end] as body:
        try:
            return binascii.a2b_base64(body)
        except (binascii.Error, ValueError):
            return decode_base64(str(body, "ascii"))


class Leaf:
    """One part that holds content, with the MIME headers a record reads, each read once.

    The values are exactly what ``Message.get_content_type()`` and friends return; asking
    the part each time would scan all its headers again for every question.
    """

    __slots__ = ("_mime_headers", "_params", "_simple", "content_type", "maintype", "part")

    def __init__(self, part: Message, mime_headers: dict[str, str], content_type: str) -> None:
        self.part = part
        self.content_type = content_type
        self.maintype = content_type.split("/")[0]
        self._mime_headers = mime_headers
        self._params: dict[str, list[tuple[str, Any]]] = {}
        # Per header: its plain parameters by name (None: not a header of plain parameters).
        self._simple: dict[str, dict[str, str] | None] = {}

    def header(self, name: str) -> str | None:
        """The first value of a ``content-*`` header (lower-case name), or ``None``."""
        return self._mime_headers.get(name)

    def param(self, name: str, header: str) -> Any:
        """``part.get_param(name, None, header)``, the header's parameters parsed once."""
        value = self._mime_headers.get(header)
        if value is None:
            return None
        # A parameter's name is part of the header's text, so a header without it has no
        # such parameter. Only without RFC 2231 ``*`` names: parsing those can raise, and
        # the caller must see that exactly as before (the part is then skipped).
        if "*" not in value and name not in value.lower():
            return None
        if header in self._simple:
            simple = self._simple[header]
        else:
            simple = self._simple[header] = _simple_param_map(value)
        if simple is not None:
            return simple.get(name)
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


# A header of plain ``name=value`` parameters: no RFC 2231 ``*`` names, no backslash, each
# value a token or a quoted string without quotes inside.
_PARAM_TOKEN = r"[A-Za-z0-9!#$%&'+.^_`{|}~-]+"
_PARAM = rf'(?:;\s*([A-Za-z0-9_.-]+)\s*=\s*({_PARAM_TOKEN}|"[^"]*")\s*)'
_SIMPLE_PARAMS = re.compile(rf'[^;="]*{_PARAM}*;?\s*')
_SIMPLE_PARAM = re.compile(_PARAM)


def _simple_param_map(value: str) -> dict[str, str] | None:
    """Every name :func:`_simple_param` answers for ``value``, with its answer; ``None`` when
    ``value`` is not a header of plain parameters.

    The first of repeated names counts, and the type before the first ``;`` (a name
    without a value) comes before them all, as in :func:`_simple_param`.
    """
    if not _simple_params(value):
        return None
    found: dict[str, str] = {}
    for match in _SIMPLE_PARAM.finditer(value):
        key = match.group(1).lower()
        if key not in found:
            text = match.group(2)
            found[key] = text[1:-1] if text.startswith('"') else text
    found[value.partition(";")[0].strip().lower()] = ""
    return found


def _simple_params(value: str) -> bool:
    """Whether a header holds only plain parameters, which :func:`_simple_param` reads."""
    return "*" not in value and "\\" not in value and _SIMPLE_PARAMS.fullmatch(value) is not None


def _simple_param(value: str, name: str) -> str | None:
    """What ``get_params`` gives for ``name`` in a header that ``_SIMPLE_PARAMS`` matches.

    The library lower-cases the names, strips the spaces around names and values and the
    quotes around a value; the type before the first ``;`` is a name without a value.
    """
    if value.partition(";")[0].strip().lower() == name:
        return ""
    for match in _SIMPLE_PARAM.finditer(value):
        if match.group(1).lower() == name:
            found = match.group(2)
            return found[1:-1] if found.startswith('"') else found
    return None


_MIME_HEADERS = frozenset({"content-type", "content-disposition", "content-transfer-encoding"})


def iter_leaves(message: Message) -> Iterator[Leaf]:
    """Every part that holds content, in order; a forwarded message counts as one part."""
    stack = [message]
    while stack:
        part = stack.pop()
        # A container's type is the one the parser asked for (remembered by _Part); its
        # headers are not read again.
        if part.is_multipart() and not part.get_content_type().startswith("message/"):
            payload = part.get_payload()
            stack.extend(reversed([item for item in payload if isinstance(item, Message)]))
            continue
        mime_headers: dict[str, str] = {}
        # raw_items(): the values exactly as items() gives them with this module's policy
        # (its header_fetch_parse returns them untouched), without a call per header.
        for name, value in part.raw_items():
            key = name.lower()
            if key in _MIME_HEADERS and key not in mime_headers:
                mime_headers[key] = value
        yield Leaf(part, mime_headers, _content_type(part, mime_headers.get("content-type")))


def _content_type(part: Message, value: str | None) -> str:
    """``part.get_content_type()``, given its first Content-Type value."""
    if value is None:
        return part.get_default_type()
    content_type = str(value).partition(";")[0].strip().lower()
    return content_type if content_type.count("/") == 1 else "text/plain"


def classify(leaf: Leaf, charsets: Charsets = ()) -> tuple[str, str | None, str]:
    """``("text" | "html" | "attachment", filename, content type)`` of one leaf part."""
    content_type = one_line(header_text(leaf.content_type))
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


def _filename(leaf: Leaf, charsets: Charsets) -> str | None:
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
            name = decode_words(header_text(str(value), charsets))
        name = one_line(name)
        if name:
            return name
    return None


def payload_bytes(leaf: Leaf) -> bytes:
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
        return decode_base64(text)
    plain = _plain_payload(leaf)
    if plain is not None:
        return plain
    data = part.get_payload(decode=True)
    return data if isinstance(data, bytes) else b""


def _plain_payload(leaf: Leaf) -> bytes | None:
    """``part.get_payload(decode=True)`` of a leaf in 7bit, 8bit or quoted-printable, else
    ``None``.

    The library's method asks the part for its encoding again (a scan of its headers);
    this reads the encoding already at hand and decodes as the method does on Python 3.10
    to 3.13 alike (the parser's text is ASCII with 8-bit bytes as surrogate escapes).
    """
    part = leaf.part
    payload = part._payload  # type: ignore[attr-defined]
    if not isinstance(payload, str) or not isinstance(part.policy, _RawHeaders):
        return None  # not from this module's parser (whose header values are as written)
    encoding = str(leaf.header("content-transfer-encoding") or "").lower()
    if encoding not in _PLAIN_ENCODINGS:
        return None
    try:
        data = payload.encode("ascii", "surrogateescape")
    except UnicodeEncodeError:  # not the parser's text: the library decides
        return None
    return quopri.decodestring(data) if encoding == "quoted-printable" else data


# The encodings the library's method decodes as above; the others are left to it.
_PLAIN_ENCODINGS = frozenset({"", "7bit", "8bit", "binary", "quoted-printable"})


def _base64_text(leaf: Leaf) -> str | None:
    """The undecoded text of a leaf whose bytes are its base64 text decoded, else ``None``."""
    if leaf.maintype == "message" and leaf.part.is_multipart():
        return None
    encoding = leaf.header("content-transfer-encoding")
    if encoding is None or not header_text(str(encoding)).strip().lower().startswith("base64"):
        return None
    try:
        text = leaf.part.get_payload()
    except (LookupError, ValueError):  # a charset parameter it could not look up
        return None
    return text if isinstance(text, str) else None


def part_text(leaf: Leaf, data: bytes) -> str:
    text = decode_bytes(data, leaf.charset())
    return text.replace("\r\n", "\n")
