"""The mailbox as the hand-over engine sees it: what a server (or a fake) must offer.

:class:`~airflow_provider_mail.handover.imap.ImapMailbox` and
:class:`~airflow_provider_mail.handover.pop3.Pop3Mailbox` implement it over the hooks'
sessions; the unit tests implement it in memory. Every claim carries its folder's
UIDVALIDITY, and every method that touches messages first checks it: when the folder was
recreated, the claim's UIDs name other messages, so nothing is taken, read or marked.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from airflow_provider_mail.mail.attachments import AttachmentSink
from airflow_provider_mail.mail.search import SearchCriteria
from airflow_provider_mail.mail.state import Claim
from airflow_provider_mail.mail.uid_ranges import UidRanges

if TYPE_CHECKING:
    from airflow_provider_mail.hooks.base import ReceiveHook

#: Called by :meth:`Mailbox.take` under the claim locks with the messages about to be
#: taken, before they are: the hand-over writes its reservation there.
Reserve = Callable[[Claim], None]

#: The UIDs a peek of a folder (with its UIDVALIDITY) must not find again.
Exclude = Callable[[str, int | None], UidRanges]


@dataclass(frozen=True)
class Poll:
    """What one poll looks for; passed unchanged to :meth:`Mailbox.peek`.

    Criteria added here (such as ``search``) reach the mailbox's search without any
    change to the engine.
    """

    folder: str | None
    unseen_only: bool
    max_emails: int
    #: Only messages matching these criteria (the sensor's ``search``).
    search: SearchCriteria | None = None
    #: UIDs not to find again (those ``leave_unread``/``move``/``delete`` handed over).
    exclude: Exclude | None = None


class Mailbox(Protocol):
    """One session with one mail account."""

    protocol: str

    def peek(self, poll: Poll) -> Claim:
        """Search: the oldest messages the poll finds; nothing is read or changed."""

    def take(self, claim: Claim, *, reserve: Reserve | None = None, pending: bool = False) -> Claim:
        """Make the claimed messages this poller's, against every other poller; returns
        the ones it now owns (IMAP: ``\\Seen`` with a conditional store under the claim
        locks; POP3: the seen Variable). ``reserve`` sees the still free ones under the
        locks, before they are taken. ``pending`` also marks them as pending (the
        AssetWatcher's event is not out yet)."""

    def read(self, claim: Claim, attachments: AttachmentSink) -> list[dict[str, Any]]:
        """The claimed messages as records, oldest first, flags unchanged."""

    def mark(self, claim: Claim) -> None:
        """Mark the claimed messages seen: they were handed over."""

    def give_back(self, claim: Claim) -> bool:
        """Undo :meth:`take` after a failed read; whether that worked (never raises)."""

    def reopen(self) -> None:
        """Drop the session: the next call opens a fresh one (after a broken read)."""

    def find_pending(self, folder: str | None) -> Claim:
        """Messages taken with ``pending`` whose event may not have gone out."""

    def release_pending(self, claim: Claim) -> None:
        """The claim's event went out: clear its pending mark."""

    def message_ids(self, claim: Claim) -> dict[int, str]:
        """UID -> Message-ID of the claimed messages (IMAP; POP3 has no UIDVALIDITY)."""

    def uid_next(self, folder: str) -> int:
        """The UID the folder's next message will get (IMAP)."""


HookT = TypeVar("HookT", bound="ReceiveHook[Any]")


class HookMailbox(Generic[HookT]):
    """What the mailboxes over a hook share: the hook's search, read and session."""

    def __init__(self, hook: HookT) -> None:
        self.hook = hook

    def peek(self, poll: Poll) -> Claim:
        """The hook's search (``find_new``): the oldest ``max_emails`` the poll finds."""
        return self.hook.find_new(
            poll.folder,
            poll.unseen_only,
            poll.max_emails,
            search=poll.search,
            exclude=poll.exclude,
        )

    def read(self, claim: Claim, attachments: AttachmentSink) -> list[dict[str, Any]]:
        """The hook's read (``fetch``): records, flags unchanged."""
        return self.hook.fetch(claim, attachments)

    def reopen(self) -> None:
        """Close the session; the next command opens a fresh one."""
        self.hook.close()
