"""Which messages a poll takes, and the small claim that names them.

A claim is what a poll decided to hand over: the folder, its UIDVALIDITY and the UIDs
(IMAP) or the unique ids (POP3). It is small enough to travel in a trigger event and to
be written to Airflow's storage before any message is marked seen.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from airflow_provider_mail.exceptions import MailConfigError

INBOX = "INBOX"


def check_max_emails(max_emails: int) -> int:
    """``max_emails`` must be a positive count or ``-1`` (all)."""
    if isinstance(max_emails, bool) or not isinstance(max_emails, int):
        raise MailConfigError(
            f"max_emails must be a whole number (a positive count, or -1 for all), "
            f"not {max_emails!r}."
        )
    if max_emails == 0 or max_emails < -1:
        raise MailConfigError(
            f"max_emails is {max_emails}; use a positive number of messages per poll, "
            "or -1 for all."
        )
    return max_emails


def check_max_connections(max_connections: int) -> int:
    """``max_connections`` must be a whole number of SMTP sessions, 1 or more."""
    if isinstance(max_connections, bool) or not isinstance(max_connections, int):
        raise MailConfigError(
            f"max_connections {max_connections!r} is not a whole number; give 1 or more."
        )
    if max_connections < 1:
        raise MailConfigError(f"max_connections is {max_connections}; give 1 or more.")
    return max_connections


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


def delay_seconds(delay: Any) -> float:
    """``delay`` as seconds: a number or a ``timedelta``; negative is an error."""
    seconds = float(delay.total_seconds()) if hasattr(delay, "total_seconds") else float(delay)
    if seconds < 0:
        raise MailConfigError(f"delay is {seconds:g} seconds; use 0 or more seconds between polls.")
    return seconds
