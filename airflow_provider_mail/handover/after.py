"""What happens to a message once it is handed over: the sensor's ``after_receive``.

An :class:`AfterReceive` decides three things of a hand-over: whether a poll *takes* its
messages before reading them (and how: the take is what keeps two pollers from handing
over one message), how a failed read *gives back* what was taken, and the step *after the
hand-over* (mark, move, delete...). Today there is one, :data:`MARK_SEEN`; each further
``after_receive`` value is one more implementation, registered in :data:`AFTER_RECEIVE`.
"""

from __future__ import annotations

from typing import Protocol

from airflow_provider_mail.handover.mailbox import Mailbox, Poll, Reserve
from airflow_provider_mail.mail.state import Claim


class AfterReceive(Protocol):
    """One value of ``after_receive``."""

    name: str

    def peek(self, mailbox: Mailbox, poll: Poll) -> Claim:
        """The messages a poll finds (nothing changed); e.g. minus those handed over."""

    def takes(self, unseen_only: bool) -> bool:
        """Whether a hand-over takes its messages before reading them."""

    def take(
        self, mailbox: Mailbox, claim: Claim, *, reserve: Reserve | None, pending: bool
    ) -> Claim:
        """Make the messages this poller's; returns the ones it owns."""

    def give_back(self, mailbox: Mailbox, claim: Claim) -> bool:
        """Undo :meth:`take` after a failed read; whether that worked (never raises)."""

    def after_hand_over(self, mailbox: Mailbox, claim: Claim, *, taken: bool) -> None:
        """The step after the records were handed over."""

    def find_pending(self, mailbox: Mailbox, folder: str | None) -> Claim:
        """What an AssetWatcher trigger took with ``pending`` whose event may not be out."""

    def release_pending(self, mailbox: Mailbox, claim: Claim) -> None:
        """The AssetWatcher's event naming ``claim`` went out: clear its pending mark."""


class MarkSeen:
    """``after_receive="mark_seen"``: IMAP ``\\Seen``, POP3 the seen Variable.

    With ``unseen_only`` the take sets ``\\Seen`` (so it is also the mark); otherwise
    nothing is taken and the messages are marked after the hand-over.
    """

    name = "mark_seen"

    def peek(self, mailbox: Mailbox, poll: Poll) -> Claim:
        """The mailbox's own search."""
        return mailbox.peek(poll)

    def takes(self, unseen_only: bool) -> bool:
        """Only ``unseen_only`` polls take (``\\Seen`` is what they look for)."""
        return unseen_only

    def take(
        self, mailbox: Mailbox, claim: Claim, *, reserve: Reserve | None, pending: bool
    ) -> Claim:
        """Set ``\\Seen`` (POP3: the seen Variable) against every other poller."""
        return mailbox.take(claim, reserve=reserve, pending=pending)

    def give_back(self, mailbox: Mailbox, claim: Claim) -> bool:
        """Clear ``\\Seen`` again (POP3: drop the ids from the seen Variable)."""
        return mailbox.give_back(claim)

    def after_hand_over(self, mailbox: Mailbox, claim: Claim, *, taken: bool) -> None:
        """Mark seen what the take did not mark already."""
        if not taken:
            mailbox.mark(claim)

    def find_pending(self, mailbox: Mailbox, folder: str | None) -> Claim:
        """The mailbox's pending mark (IMAP keyword; POP3 pending Variable)."""
        return mailbox.find_pending(folder)

    def release_pending(self, mailbox: Mailbox, claim: Claim) -> None:
        """Clear the mailbox's pending mark."""
        mailbox.release_pending(claim)


MARK_SEEN = MarkSeen()

#: ``after_receive`` value -> its implementation.
AFTER_RECEIVE: dict[str, AfterReceive] = {MARK_SEEN.name: MARK_SEEN}
