"""Which messages a poll takes, and the small claim that names them.

A claim is what a poll decided to hand over: the folder, its UIDVALIDITY and the UIDs
(IMAP) or the unique ids (POP3). It is small enough to travel in a trigger event and to
be written to Airflow's storage before any message is marked seen.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

INBOX = "INBOX"


def oldest_first(ids: Iterable[int], max_emails: int) -> list[int]:
    """The ``max_emails`` lowest ids (the oldest messages), ascending; ``-1`` takes all."""
    ordered = sorted(set(ids))
    return ordered if max_emails == -1 else ordered[:max_emails]


def folder_name(folder: str | None) -> str:
    """``None`` or empty means the inbox."""
    return folder.strip() if folder and folder.strip() else INBOX


def mailbox_key(folder: str | None) -> str:
    """``folder`` as one name per mailbox: the inbox is ``INBOX`` however it is spelled."""
    return INBOX if is_inbox(folder) else folder_name(folder)


def is_inbox(folder: str | None) -> bool:
    """Whether ``folder`` names the inbox (IMAP's INBOX is case-insensitive)."""
    return folder_name(folder).upper() == INBOX


def distinct_uidls(
    listing: Sequence[tuple[int, str]], digest: Callable[[int], str]
) -> list[tuple[int, str]]:
    """A POP3 UIDL listing in which every id names one message.

    RFC 1939 wants UIDLs unique, but a broken or hostile server may report one id for two
    messages (or an empty one). Taken as it is, one of them would be delivered twice and
    the other never. An id that is not unique is therefore extended with ``digest(number)``
    (a digest of that message's content) and, for identical content, a running count:
    ``dup~3f2a...``, ``dup~3f2a...~2``. Unique ids are kept exactly as the server sent them.
    """
    counts = Counter(uidl for _number, uidl in listing)
    taken = set(counts)
    result = []
    for number, uidl in listing:
        if uidl and counts[uidl] == 1:
            result.append((number, uidl))
            continue
        base = f"{uidl}~{digest(number)}"
        ident, count = base, 1
        while ident in taken:
            count += 1
            ident = f"{base}~{count}"
        taken.add(ident)
        result.append((number, ident))
    return result


def new_pop3_messages(
    listing: Sequence[tuple[int, str]],
    seen: Iterable[str],
    *,
    unseen_only: bool,
    max_emails: int,
) -> list[tuple[int, str]]:
    """From a POP3 UIDL listing of ``(number, uidl)``, the oldest ones a poll takes."""
    already = set(seen) if unseen_only else set()
    fresh = {number: uidl for number, uidl in listing if uidl not in already}
    return [(number, fresh[number]) for number in oldest_first(fresh, max_emails)]


def remember_seen(
    seen: Iterable[str],
    handed_over: Iterable[str],
    present: Iterable[str],
    seen_before_listing: Iterable[str] = (),
) -> list[str]:
    """The seen set after a hand-over, pruned of ids that left the server.

    ``present`` is a UIDL listing, which may be older than ``seen``: another poller may
    have added ids of messages that arrived after it was read. Only ids that were seen
    before the listing was read and are missing from it are gone for sure, so only
    those are pruned.
    """
    gone = set(seen_before_listing) - set(present)
    return sorted((set(seen) | set(handed_over)) - gone)


@dataclass(frozen=True)
class Claim:
    """The messages one poll hands over; ``bool(claim)`` (its length) is False when none."""

    protocol: str
    folder: str
    uidvalidity: int | None = None
    uids: tuple[int, ...] = field(default=())
    uidls: tuple[str, ...] = field(default=())

    def __len__(self) -> int:
        return len(self.uids) + len(self.uidls)

    def to_payload(self) -> dict[str, Any]:
        """A JSON-safe dict: the trigger event's payload and the ledger's entry."""
        return {
            "protocol": self.protocol,
            "folder": self.folder,
            "uidvalidity": self.uidvalidity,
            "uids": list(self.uids),
            "uidls": list(self.uidls),
        }

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> Claim:
        """The inverse of :meth:`to_payload`."""
        uidvalidity = payload.get("uidvalidity")
        return cls(
            protocol=str(payload["protocol"]),
            folder=str(payload["folder"]),
            uidvalidity=int(uidvalidity) if uidvalidity is not None else None,
            uids=tuple(int(uid) for uid in payload.get("uids", ())),
            uidls=tuple(str(uidl) for uidl in payload.get("uidls", ())),
        )


def claim_of(records: list[dict[str, Any]]) -> Claim | None:
    """The messages of ``records`` as one claim (they come from one folder); ``None``
    when there are none."""
    if not records:
        return None
    first = records[0]
    if first.get("uidl") is not None:
        return Claim("pop3", str(first["folder"]), uidls=tuple(r["uidl"] for r in records))
    return Claim(
        "imap",
        str(first["folder"]),
        first.get("uidvalidity"),
        uids=tuple(int(r["uid"]) for r in records if r.get("uid") is not None),
    )
