"""Server-side search: the sensor's ``search`` criteria as IMAP ``UID SEARCH`` arguments,
and the same criteria applied to POP3 headers (pure, no sockets).

Every value a DAG author (or, through a template, a stranger's email) puts into a
criterion is sent as data: a quoted string when it is printable ASCII (``\\`` and ``"``
escaped), otherwise an IMAP literal (``{n}`` followed by the bytes), so a quote, a
parenthesis, a backslash or a CR/LF in a value can never end the value and become part
of the command. Non-ASCII values make the search ``CHARSET UTF-8``.

``since`` and ``before`` compare the sent date (the Date header) by day, as IMAP's
``SENTSINCE`` / ``SENTBEFORE`` do: the day as written in the header, its time and time
zone disregarded (RFC 3501, 6.4.4).
"""

from __future__ import annotations

import email.header
import email.parser
import email.policy
import email.utils
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date

#: English month abbreviations of IMAP dates (``1-Feb-2026``), whatever the locale says.
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

#: The text criteria and the IMAP search key of each.
TEXT_KEYS = {
    "from": "FROM",
    "to": "TO",
    "cc": "CC",
    "subject": "SUBJECT",
    "body": "BODY",
    "text": "TEXT",
}

#: Criteria POP3 cannot check before a body is read (it has no server-side search).
BODY_KEYS = ("body", "text")


@dataclass(frozen=True)
class Literal:
    """A value sent as an IMAP literal (``{n}`` and then exactly n bytes)."""

    data: bytes


#: One argument of a ``UID SEARCH`` command: an atom or quoted string, or a literal.
Argument = bytes | Literal


@dataclass(frozen=True)
class SearchCriteria:
    """The ``search`` parameter, validated (see :func:`~.params.check_search`).

    Text values are substrings; ``headers`` holds ``(name, value)`` pairs; ``flagged``
    ``None`` means "either".
    """

    texts: tuple[tuple[str, str], ...] = ()
    since: date | None = None
    before: date | None = None
    larger: int | None = None
    smaller: int | None = None
    headers: tuple[tuple[str, str], ...] = ()
    flagged: bool | None = None

    def needs_body(self) -> bool:
        """Whether a criterion looks into the body (``body``, ``text``)."""
        return any(key in BODY_KEYS for key, _value in self.texts)

    def to_payload(self) -> dict[str, object]:
        """The criteria as the JSON-safe dict a DAG author writes (for trigger kwargs)."""
        payload: dict[str, object] = dict(self.texts)
        if self.since is not None:
            payload["since"] = self.since.isoformat()
        if self.before is not None:
            payload["before"] = self.before.isoformat()
        if self.larger is not None:
            payload["larger"] = self.larger
        if self.smaller is not None:
            payload["smaller"] = self.smaller
        if self.headers:
            payload["header"] = dict(self.headers)
        if self.flagged is not None:
            payload["flagged"] = self.flagged
        return payload


@dataclass(frozen=True)
class SearchCommand:
    """The arguments of one ``UID SEARCH``; ``charset`` is ``"UTF-8"`` or ``None``."""

    charset: str | None
    arguments: tuple[Argument, ...]

    def arguments_with_charset(self) -> list[Argument]:
        """What follows ``UID SEARCH`` on the wire: ``CHARSET UTF-8`` first when needed."""
        prefix: list[Argument] = [b"CHARSET", self.charset.encode()] if self.charset else []
        return [*prefix, *self.arguments]


def imap_date(day: date) -> bytes:
    """``day`` as an IMAP date atom, e.g. ``b"3-Feb-2026"`` (no locale involved)."""
    return f"{day.day}-{_MONTHS[day.month - 1]}-{day.year}".encode("ascii")


def value_argument(value: str) -> Argument:
    """``value`` as data: a quoted string if printable ASCII, else a UTF-8 literal."""
    if all(" " <= char <= "~" for char in value):
        escaped = value.replace("\\", "\\\\").replace('"', '\\"')
        return b'"' + escaped.encode("ascii") + b'"'
    return Literal(value.encode("utf-8"))


def imap_search(
    criteria: SearchCriteria | None,
    *,
    unseen_only: bool,
    exclude: str = "",
) -> SearchCommand:
    """The ``UID SEARCH`` of one poll: ``criteria`` and ``UNSEEN``, all of them ANDed.

    ``exclude`` is an IMAP UID set (``1:500,502``) of messages not to find again
    (those already handed over with ``after_receive="leave_unread"``). A value such as
    ``a" OR ALL "`` becomes the one quoted string ``"a\\" OR ALL \\""``.
    """
    arguments: list[Argument] = [b"UNSEEN"] if unseen_only else []
    charset = None
    if criteria is not None:
        for key, value in criteria.texts:
            arguments += [TEXT_KEYS[key].encode("ascii"), value_argument(value)]
        for name, value in criteria.headers:
            arguments += [b"HEADER", value_argument(name), value_argument(value)]
        if criteria.since is not None:
            arguments += [b"SENTSINCE", imap_date(criteria.since)]
        if criteria.before is not None:
            arguments += [b"SENTBEFORE", imap_date(criteria.before)]
        if criteria.larger is not None:
            arguments += [b"LARGER", str(criteria.larger).encode("ascii")]
        if criteria.smaller is not None:
            arguments += [b"SMALLER", str(criteria.smaller).encode("ascii")]
        if criteria.flagged is not None:
            arguments.append(b"FLAGGED" if criteria.flagged else b"UNFLAGGED")
        if any(isinstance(argument, Literal) for argument in arguments):
            charset = "UTF-8"
    if exclude:
        arguments += [b"NOT", b"UID", exclude.encode("ascii")]
    return SearchCommand(charset, tuple(arguments) or (b"ALL",))


# --- POP3: the same criteria on the headers of TOP n 0 and the sizes of LIST -------------


def size_matches(criteria: SearchCriteria | None, size: int) -> bool:
    """``larger`` / ``smaller`` against a message's size in bytes (POP3 ``LIST``)."""
    if criteria is None:
        return True
    if criteria.larger is not None and not size > criteria.larger:
        return False
    return not (criteria.smaller is not None and not size < criteria.smaller)


def needs_headers(criteria: SearchCriteria | None) -> bool:
    """Whether deciding needs the message's headers (a ``TOP n 0``), not only its size."""
    return criteria is not None and bool(
        criteria.texts or criteria.headers or criteria.since or criteria.before
    )


def headers_match(criteria: SearchCriteria | None, header_bytes: bytes) -> bool:
    """Whether the headers of one message (``TOP n 0``) match every header criterion.

    Case-insensitive substrings of the decoded (RFC 2047) header values, as IMAP servers
    compare; a message without the header does not match. ``body`` / ``text`` must have
    been refused before (they need the body).
    """
    if criteria is None:
        return True
    message = email.parser.BytesHeaderParser(policy=email.policy.compat32).parsebytes(header_bytes)
    for key, value in criteria.texts:
        if not _any_contains(message.get_all(key) or [], value):
            return False
    for name, value in criteria.headers:
        if not _any_contains(message.get_all(name) or [], value):
            return False
    if criteria.since is not None or criteria.before is not None:
        sent = sent_day(message.get("Date"))
        if sent is None:
            return False
        if criteria.since is not None and sent < criteria.since:
            return False
        if criteria.before is not None and not sent < criteria.before:
            return False
    return True


def sent_day(value: object) -> date | None:
    """The day of a Date header as written (time and zone disregarded), or ``None``."""
    if not isinstance(value, str):
        return None
    parsed = email.utils.parsedate_tz(value)
    if parsed is None:
        return None
    try:
        return date(parsed[0], parsed[1], parsed[2])
    except ValueError:
        return None


def _any_contains(values: Iterable[object], needle: str) -> bool:
    wanted = needle.casefold()
    return any(wanted in _decoded(value).casefold() for value in values)


def _decoded(value: object) -> str:
    """A header value with RFC 2047 words decoded, best effort (never raises)."""
    text = value if isinstance(value, str) else str(value)
    try:
        return str(email.header.make_header(email.header.decode_header(text)))
    except Exception:
        return text


def pop3_matches(
    candidates: Iterable[tuple[int, str]],
    criteria: SearchCriteria | None,
    max_emails: int,
    *,
    sizes: Callable[[], Mapping[int, int]],
    top: Callable[[int], bytes],
) -> list[tuple[int, str]]:
    """Of POP3 ``(number, uidl)`` candidates (oldest first), the first ``max_emails`` that match.

    ``sizes`` is one ``LIST`` (asked only when ``larger``/``smaller`` are given); ``top``
    reads one message's headers (``TOP n 0``) and is asked only for messages whose size
    matched, and only until ``max_emails`` matched (``-1``: all), so no body is read.
    """
    ordered = sorted(candidates)
    if criteria is None:
        return ordered if max_emails == -1 else ordered[:max_emails]
    known_sizes = sizes() if criteria.larger is not None or criteria.smaller is not None else {}
    picked: list[tuple[int, str]] = []
    for number, uidl in ordered:
        if max_emails != -1 and len(picked) >= max_emails:
            break
        if known_sizes and not size_matches(criteria, known_sizes.get(number, 0)):
            continue
        if needs_headers(criteria) and not headers_match(criteria, top(number)):
            continue
        picked.append((number, uidl))
    return picked
