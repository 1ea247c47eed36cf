"""The POP3 side of the hand-over: POP3 has no flags, so Airflow's storage holds them.

"Seen" is the seen Variable of the account (the ids handed over); taking a message adds
it there under the host lock, so pollers of one host never take the same message.
"""

from __future__ import annotations

from collections.abc import Callable

from airflow_provider_mail.handover.locks import ClaimLock, HostClaimLock, all_held
from airflow_provider_mail.handover.mailbox import HookMailbox, Reserve
from airflow_provider_mail.hooks.pop3 import Pop3Hook
from airflow_provider_mail.keyvalue import KeyValueStore, update
from airflow_provider_mail.mail.state import INBOX, Claim, remember_seen


class Pop3Mailbox(HookMailbox[Pop3Hook]):
    """The :class:`~airflow_provider_mail.handover.mailbox.Mailbox` of a Pop3Hook."""

    protocol = "pop3"

    @property
    def store(self) -> KeyValueStore:
        """Where the account's seen and pending ids live (the hook's ``state_store``)."""
        return self.hook.state_store

    def locks(self) -> list[ClaimLock]:
        """The claim lock of the account: the host lock of its seen Variable, the same
        lock every update of that Variable takes (``keyvalue.variable_lock``)."""
        return [HostClaimLock("variable", self.hook.seen_key)]

    def take(self, claim: Claim, *, reserve: Reserve | None = None, pending: bool = False) -> Claim:
        """Add the claimed ids no other poller took to the seen set; returns them.

        The seen Variable is read and written under the account's host lock. With
        ``pending``, the ids are also kept as pending until :meth:`release_pending`.
        """
        if not claim.uidls:
            return claim
        seen_key = self.hook.seen_key
        with all_held(self.locks()):
            seen = self.hook.seen()
            already = set(seen)
            owned = tuple(uidl for uidl in claim.uidls if uidl not in already)
            if owned and reserve is not None:
                reserve(Claim("pop3", INBOX, uidls=owned))
            if pending and owned:
                # Pending first: a crash before the seen set is written repeats an event.
                self._update_pending(lambda uidls: uidls | set(owned))
            self.store.set(seen_key, self._remember(seen, owned, seen_now=seen))
        if len(owned) < len(claim):
            self.hook.log.info(
                "%d message(s) were taken by another poller.", len(claim) - len(owned)
            )
        return Claim("pop3", INBOX, uidls=owned)

    def mark(self, claim: Claim) -> None:
        """Add the claimed ids to the seen set, pruned of ids no longer on the server."""
        update(self.store, self.hook.seen_key, lambda seen: self._remember(seen or [], claim.uidls))

    def give_back(self, claim: Claim) -> bool:
        """Drop the ids from the seen set after a failed hand-over; whether that worked."""
        if claim.uidls:
            try:
                taken = set(claim.uidls)
                update(
                    self.store,
                    self.hook.seen_key,
                    lambda seen: [uidl for uidl in seen or [] if uidl not in taken],
                )
            except Exception as err:
                self.hook.log.warning("Could not give %d message(s) back (%s).", len(claim), err)
                return False
        return True

    def find_pending(self, folder: str | None) -> Claim:
        """Ids a trigger took whose event may not have gone out (still on the server).

        They count as seen again: a trigger that died between writing them as pending and
        as seen (see :meth:`take`) must not hand them to the next poll as new.
        """
        pending = set(self.store.get(self.hook.pending_key) or [])
        present = [uidl for _number, uidl in self.hook.listing() if uidl in pending]
        claim = Claim("pop3", INBOX, uidls=tuple(present))
        if claim:
            self.mark(claim)
        return claim

    def release_pending(self, claim: Claim) -> None:
        """The claim's event went out."""
        if claim.uidls:
            self._update_pending(lambda uidls: uidls - set(claim.uidls))

    def message_ids(self, claim: Claim) -> dict[int, str]:
        """POP3 claims have no UIDVALIDITY, so no folder is ever recreated: nothing."""
        return {}

    def uid_next(self, folder: str) -> int:
        """POP3 has no UIDs."""
        raise NotImplementedError("POP3 has no UIDs")

    def _update_pending(self, change: Callable[[set[str]], set[str]]) -> None:
        update(
            self.store,
            self.hook.pending_key,
            lambda pending: sorted(change(set(pending or []))),
        )

    def _remember(
        self, seen: list[str], handed_over: tuple[str, ...], seen_now: list[str] | None = None
    ) -> list[str]:
        present = [uidl for _number, uidl in self.hook.listing(seen_now)]
        return remember_seen(seen, handed_over, present, self.hook.seen_before_listing)
