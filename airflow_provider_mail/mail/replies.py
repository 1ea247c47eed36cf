"""What a reply needs to know about a message: its thread, and whether a machine sent it.

Pure: header values in, record fields out. The receive side reads the record fields
``in_reply_to``, ``references`` and ``automatic`` with :func:`reply_fields`; the send side
checks the message ids it writes with :func:`message_ids`.

Header values here come from strangers: they may be folded, repeated, full of comments or
garbage, or megabytes long. Only well-formed message ids (``<`` printable ASCII ``>``) are
taken, each of bounded length, and a References header keeps a bounded number of them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

#: Most message ids ``references`` keeps: the first (the thread's root) and the newest
#: ones, as RFC 5322 section 3.6.4 allows when a References header grows too long.
MAX_REFERENCES = 100
#: Longest message id taken, angle brackets included (the RFC 5322 line limit).
MAX_MESSAGE_ID_CHARS = 998

# Printable ASCII without space, "<" and ">": what an id-left "@" id-right may hold,
# loosely (real mail has ids without "@", with quotes or with odd characters).
_MESSAGE_ID = re.compile(rf"<[\x21-\x3b\x3d\x3f-\x7e]{{1,{MAX_MESSAGE_ID_CHARS - 2}}}>")
_FOLDING = re.compile(r"\r?\n")
# A bounce comes from the mail system itself (RFC 3464, RFC 5321 section 4.5.1).
_SYSTEM_SENDERS = ("mailer-daemon", "postmaster")
# Finds them wherever value.lower() would hold them: besides ASCII, only U+0130 ("i" and a
# combining dot) and U+212A ("k") lower to ASCII letters, and neither can complete a name.
_SYSTEM_SENDER = re.compile("|".join(_SYSTEM_SENDERS), re.ASCII | re.IGNORECASE)
_BULK_PRECEDENCE = frozenset({"bulk", "junk", "list"})
# Headers that mark a message as machine-sent whatever their value, except an explicit "no".
_AUTO_REPLY_MARKERS = frozenset({"x-autoreply", "x-autorespond"})
# Microsoft's request not to answer automatically (set on its own out-of-office replies).
_SUPPRESS_VALUES = frozenset({"all", "autoreply", "oof"})
_FALSE_VALUES = frozenset({"no", "false", "0"})
#: The headers :func:`reply_fields` reads (lower case); other headers may be left out.
HEADERS = frozenset(
    {
        "in-reply-to",
        "references",
        "auto-submitted",
        "precedence",
        "list-id",
        "return-path",
        "from",
        "sender",
        "x-auto-response-suppress",
        *_AUTO_REPLY_MARKERS,
    }
)
_COMMENT = re.compile(r"\([^()]*\)")


def message_ids(text: str) -> list[str]:
    """Every well-formed message id in ``text``, in order, with angle brackets.

    Folding is undone first; anything that is not ``<printable ASCII>`` is skipped.

    >>> message_ids("<a@x> (comment) garbage <b@y>")
    ['<a@x>', '<b@y>']
    """
    return _MESSAGE_ID.findall(_FOLDING.sub("", text))


def bounded_references(ids: list[str], limit: int = MAX_REFERENCES) -> list[str]:
    """``ids`` without repeats, at most ``limit``: the first one and the newest ones."""
    unique = list(dict.fromkeys(ids))
    if len(unique) <= limit:
        return unique
    return [unique[0], *unique[len(unique) - limit + 1 :]]


def reply_fields(headers: Iterable[tuple[str, Any]]) -> dict[str, Any]:
    """The record fields ``in_reply_to``, ``references`` and ``automatic`` of a message.

    :param headers: the message's ``(name, value)`` pairs, as ``Message.items()`` gives
        them (one pass, any order, names in any case).

    ``in_reply_to`` is the first message id of the first In-Reply-To header (or ``None``);
    ``references`` the ids of the References headers, oldest first, without repeats, at
    most :data:`MAX_REFERENCES`; ``automatic`` is :func:`is_automatic`'s answer.

    >>> reply_fields([("In-Reply-To", "<a@x>"), ("Precedence", "bulk")])
    {'in_reply_to': '<a@x>', 'references': [], 'automatic': True}
    """
    found: dict[str, list[str]] = {}
    for name, value in headers:
        key = name.lower()
        if key in HEADERS:
            found.setdefault(key, []).append(str(value))
    return reply_fields_of(found)


def reply_fields_of(found: Mapping[str, list[str]]) -> dict[str, Any]:
    """:func:`reply_fields` of header values already collected by lower-case name (at least
    those of :data:`HEADERS`, in the message's order)."""
    in_reply_to = None
    for value in found.get("in-reply-to", ()):
        ids = message_ids(value)
        if ids:
            in_reply_to = ids[0]
            break
    references = (
        bounded_references([one for value in found["references"] for one in message_ids(value)])
        if "references" in found
        else []
    )
    return {
        "in_reply_to": in_reply_to,
        "references": references,
        "automatic": is_automatic(found),
    }


def _token(value: str) -> str:
    """The first word of a header value, lower case, comments and parameters dropped."""
    return _COMMENT.sub(" ", _FOLDING.sub("", value)).split(";")[0].strip().lower()


def is_automatic(headers: Mapping[str, list[str]]) -> bool:
    """Whether a message must get no automatic reply (RFC 3834 section 2).

    :param headers: header values by lower-case name.

    True for ``Auto-Submitted`` other than ``no``; ``Precedence: bulk``, ``junk`` or
    ``list``; any ``List-Id``; a bounce (an empty ``Return-Path``, or a From or Sender
    whose mailbox is ``MAILER-DAEMON`` or ``postmaster``); ``X-Autoreply`` or
    ``X-Autorespond`` (unless ``no``); ``X-Auto-Response-Suppress`` asking for no
    automatic reply (``All``, ``AutoReply``, ``OOF``).
    """
    if not _MARKERS.isdisjoint(headers) and _marked_automatic(headers):
        return True
    return any(
        _is_system_sender(value)
        for name in ("from", "sender", "return-path")
        for value in headers.get(name, ())
    )


def _marked_automatic(headers: Mapping[str, list[str]]) -> bool:
    """The header tests of :func:`is_automatic` other than the sender's mailbox."""
    if any(_token(value) != "no" for value in headers.get("auto-submitted", ())):
        return True
    if any(_token(value) in _BULK_PRECEDENCE for value in headers.get("precedence", ())):
        return True
    if headers.get("list-id"):
        return True
    for marker in _AUTO_REPLY_MARKERS:
        if any(_token(value) not in _FALSE_VALUES for value in headers.get(marker, ())):
            return True
    for value in headers.get("x-auto-response-suppress", ()):
        if {word.strip().lower() for word in value.split(",")} & _SUPPRESS_VALUES:
            return True
    return any(_is_null_path(value) for value in headers.get("return-path", ()))


# The headers _marked_automatic reads: most messages have none of them.
_MARKERS = frozenset(
    {"auto-submitted", "precedence", "list-id", "x-auto-response-suppress", "return-path"}
    | _AUTO_REPLY_MARKERS
)


def _is_null_path(value: str) -> bool:
    stripped = _COMMENT.sub("", _FOLDING.sub("", value)).strip()
    return stripped in ("", "<>")


def _is_system_sender(value: str) -> bool:
    if _SYSTEM_SENDER.search(value) is None:
        return False  # the cheap answer for nearly every message
    lowered = value.lower()
    # The mailbox before "@" (or the whole bare word): "MAILER-DAEMON@x", "<postmaster@x>",
    # "Mail Delivery System <MAILER-DAEMON@x>", or "MAILER-DAEMON" alone.
    for local in re.findall(r"([^\s<>@\"(),:;]+)@", lowered) or [lowered.strip(" <>")]:
        if local in _SYSTEM_SENDERS:
            return True
    return False
