"""The hand-over engine: how a message is handed over exactly once (docs/handover.md).

One :class:`HandOver` runs the protocol for every path: the deferrable sensor and poke
mode (:meth:`HandOver.hand_over`, :meth:`HandOver.deliver_unfinished`), a hook's own
``receive`` (:meth:`HandOver.receive`) and the AssetWatcher (:meth:`HandOver.watch`,
:meth:`HandOver.released`, :meth:`HandOver.fetch_claimed`). Its steps carry the names of
the document: *peek*, *write ahead*, *take* (with its *reservation*), *read*, *mark* (the
step after the hand-over, :mod:`.after`) and *give back*. It talks to the mail server
only through a :class:`~.mailbox.Mailbox` and to Airflow's storage only through a
:class:`~.ledger.Ledger` and :class:`~.state.Stores`, so every crash point is tested in
milliseconds against fakes (``tests/unit/test_handover_engine.py``).
"""

from __future__ import annotations

import logging
from typing import Any

from airflow_provider_mail.exceptions import MailError, MailStorageError
from airflow_provider_mail.handover.after import AFTER_RECEIVE, MARK_SEEN, AfterReceive
from airflow_provider_mail.handover.ledger import Ledger, LedgerEntry, MemoryLedger
from airflow_provider_mail.handover.mailbox import Mailbox, Poll, Reserve
from airflow_provider_mail.handover.state import DeliveredMessageIds, Stores
from airflow_provider_mail.mail.attachments import AttachmentSink
from airflow_provider_mail.mail.state import Claim

Records = list[dict[str, Any]]


class HandOver:
    """The exactly-once protocol over one mailbox session.

    :param mailbox: the mail server (one session).
    :param ledger: where a sensor task instance records its claim; default: memory (a
        hook's own ``receive`` has no retry to inform).
    :param stores: the connection's durable state (Message-IDs of recreated folders, owed
        give-backs, AssetWatcher deliveries); ``None``: none (a fake, or no storage).
    :param after: what happens to a message after its hand-over (``after_receive``).
    :param log: where the engine says what it did (the hook's or task's logger).
    """

    def __init__(
        self,
        mailbox: Mailbox,
        *,
        ledger: Ledger | None = None,
        stores: Stores | None = None,
        after: AfterReceive = MARK_SEEN,
        log: Any = None,
    ) -> None:
        self.mailbox = mailbox
        self.ledger: Ledger = ledger if ledger is not None else MemoryLedger()
        self.stores = stores
        self.after = after
        self.log = log or logging.getLogger(__name__)

    # The paths -------------------------------------------------------------------------

    def hand_over(
        self,
        claim: Claim,
        attachments: AttachmentSink,
        *,
        unseen_only: bool,
        earlier: LedgerEntry | None = None,
    ) -> Records:
        """Write ahead, take, read and mark ``claim``; the records handed over.

        ``earlier``: the ledger entry of a try that died (see :meth:`deliver_unfinished`).
        An entry not reserved never took anything, so it takes again and delivers what it
        gets; a reserved one delivers all of it, taking what is still free.
        """
        if earlier is None:
            self.write_ahead(claim)
        delivered = self._delivered(claim)
        taken = self.after.takes(unseen_only)
        if taken and earlier is not None and earlier.reserved:
            self.take(claim)  # what the crash left free; all of it is this task's
        elif taken:
            reserved: list[Claim] = []

            def reserve(taking: Claim) -> None:
                self.reserve(taking)
                reserved.append(taking)

            owned = self._without_repeats(self.take(claim, reserve=reserve), delivered)
            if owned != (reserved[-1] if reserved else claim):
                self.reserve(owned)  # the server refused some, or some were repeats
            claim = owned
        records = self.read(claim, attachments, taken=taken)
        self.mark(claim, records, taken=taken, delivered=delivered)
        return records

    def deliver_unfinished(self, attachments: AttachmentSink, *, unseen_only: bool) -> Records:
        """The messages an earlier try of this task instance claimed and may not have
        handed over (its ledger entry); ``[]`` when it has none."""
        earlier = self.ledger.entry()
        if earlier is None:
            return []
        return self.hand_over(earlier.claim, attachments, unseen_only=unseen_only, earlier=earlier)

    def receive(self, poll: Poll, attachments: AttachmentSink) -> Records:
        """One poll and its hand-over (``ImapHook.receive`` / ``Pop3Hook.receive``)."""
        self.settle_give_backs()
        claim = self.peek(poll)
        if not claim:
            return []
        return self.hand_over(claim, attachments, unseen_only=poll.unseen_only)

    def watch(self, poll: Poll, *, recover_pending: bool) -> Claim:
        """An AssetWatcher's poll: the messages its next event names, taken with a
        pending mark (the event is the hand-over). ``recover_pending``: first a claim of
        an earlier life of the trigger whose event may not have gone out."""
        if recover_pending:
            pending = self.after.find_pending(self.mailbox, poll.folder)
            if pending:
                return pending
        claim = self.peek(poll)
        if claim:
            claim = self.take(claim, pending=True)
        return claim

    def released(self, claim: Claim) -> None:
        """The AssetWatcher's event went out: clear the pending mark."""
        self.after.release_pending(self.mailbox, claim)

    def fetch_claimed(
        self, claim: Claim, attachments: AttachmentSink, *, run_id: str | None
    ) -> Records:
        """Read what an AssetWatcher event named. With ``run_id``, a message another run
        read first (a repeated event) is skipped; a retry of that run gets it again."""
        if run_id is not None and self.stores is not None:
            claim = self._not_handed_over_elsewhere(claim, run_id, self.stores)
        return self.read(claim, attachments, taken=False)

    # The steps -------------------------------------------------------------------------

    def peek(self, poll: Poll) -> Claim:
        """Step 1, *peek*: search; nothing is changed."""
        return self.after.peek(self.mailbox, poll)

    def write_ahead(self, claim: Claim) -> None:
        """Step 2, *write ahead*: the claim goes to the ledger before anything is touched."""
        self.ledger.write_ahead(claim)

    def reserve(self, claim: Claim) -> None:
        """Part of step 3: under the claim locks, the messages about to be taken are
        written to the ledger as this task's (a failure takes nothing)."""
        try:
            self.ledger.reserve(claim)
        except MailError:
            raise
        except Exception as err:
            raise MailStorageError(
                f"The messages about to be taken from {claim.folder} could not be recorded in "
                f"Airflow's storage ({type(err).__name__}); nothing was taken. Check that the "
                "Airflow API server and its database are reachable."
            ) from err

    def take(self, claim: Claim, *, reserve: Reserve | None = None, pending: bool = False) -> Claim:
        """Step 3, *take*: make the messages this poller's against every other poller."""
        if not claim:
            return claim
        return self.after.take(self.mailbox, claim, reserve=reserve, pending=pending)

    def read(self, claim: Claim, attachments: AttachmentSink, *, taken: bool) -> Records:
        """Step 4, *read*: the records (``BODY.PEEK[]``; flags unchanged). A read that
        fails after a take gives the messages back before the error goes on."""
        if not claim:
            return []
        try:
            return self.mailbox.read(claim, attachments)
        except BaseException:
            if taken:
                # A later run must get them even without a retry; the retry takes them
                # again like any poller, so the entry is no longer reserved either way.
                self.give_back(claim)
                try:
                    self.ledger.write_ahead(claim)
                except Exception as err:  # the read's error is the one to see
                    self.log.debug("Ledger entry not rewritten (%s).", type(err).__name__)
            raise

    def mark(
        self,
        claim: Claim,
        records: Records,
        *,
        taken: bool,
        delivered: DeliveredMessageIds | None,
    ) -> None:
        """Step 5, *mark*: the step after the hand-over (``after_receive``), and the
        Message-IDs recorded for a folder that may be recreated."""
        if claim:
            self.after.after_hand_over(self.mailbox, claim, taken=taken)
        if delivered is None:
            return
        message_ids = [r["message_id"] for r in records if r["message_id"]]
        try:
            delivered.remember(claim.uidvalidity, message_ids)
        except Exception as err:
            self.log.warning(
                "The Message-IDs handed over from %s could not be recorded (%s); should the "
                "folder be recreated, they could be delivered again.",
                claim.folder,
                type(err).__name__,
            )

    def give_back(self, claim: Claim) -> bool:
        """*Give back* what a failed hand-over took, so that the next poll returns it.

        The read that failed has often broken the session, so a failed give-back is tried
        again over a fresh session; when that fails too, the claim is owed in Airflow's
        storage and the next hand-over of this connection gives it back before polling
        (:meth:`settle_give_backs`). Returns whether the messages are back now. Never
        raises: the caller is already failing with the error that matters.
        """
        if not claim:
            return True
        if self.after.give_back(self.mailbox, claim):
            return True
        self.mailbox.reopen()
        if self.after.give_back(self.mailbox, claim):
            return True
        try:
            owed = self.stores.owed() if self.stores is not None else None
            if owed is None:
                raise LookupError("no Airflow storage here")
            owed.add({**claim.to_payload(), "after_receive": self.after.name})
        except Exception as err:
            self.log.error(
                "%d message(s) taken from %s could not be given back nor recorded (%s); "
                "clear their Seen flag by hand so that unseen_only polls return them.",
                len(claim),
                claim.folder,
                type(err).__name__,
            )
            return False
        self.log.warning(
            "%d message(s) taken from %s could not be given back now; the next poll of this "
            "connection gives them back first.",
            len(claim),
            claim.folder,
        )
        return False

    def settle_give_backs(self) -> None:
        """Give back what earlier failed hand-overs of this connection still owe."""
        owed = self.stores.owed() if self.stores is not None else None
        if owed is None:
            return
        payloads = [p for p in owed.claims() if p.get("protocol") == self.mailbox.protocol]
        if not payloads:
            return
        done = [
            p
            for p in payloads
            if AFTER_RECEIVE.get(p.get("after_receive", ""), MARK_SEEN).give_back(
                self.mailbox, Claim.from_payload(p)
            )
        ]
        if done:
            owed.settled(done)
            self.log.info(
                "Gave back %d message(s) that an earlier failed hand-over had taken.",
                sum(len(Claim.from_payload(p)) for p in done),
            )

    # Recreated folders and repeated AssetWatcher events ------------------------------

    def _delivered(self, claim: Claim) -> DeliveredMessageIds | None:
        """The Message-IDs handed over from the claim's folder (claims with UIDVALIDITY)."""
        if self.stores is None or claim.uidvalidity is None:
            return None
        return self.stores.delivered(claim.folder)

    def _without_repeats(self, claim: Claim, delivered: DeliveredMessageIds | None) -> Claim:
        """After a folder was recreated, drop (and keep taken) what was handed over before.

        A recreated folder (new UIDVALIDITY) gives its messages new UIDs and often loses
        their ``\\Seen`` flags; the Message-ID tells which were handed over already.
        """
        if delivered is None or not claim:
            return claim
        if delivered.folder_was_recreated(claim.uidvalidity):
            delivered.start_checking(claim.uidvalidity, self.mailbox.uid_next(claim.folder))
        suspects = delivered.suspects(claim.uids)
        if not suspects:
            return claim
        known = set(delivered.message_ids)
        suspect_claim = Claim(claim.protocol, claim.folder, claim.uidvalidity, tuple(suspects))
        repeats = {
            uid for uid, mid in self.mailbox.message_ids(suspect_claim).items() if mid in known
        }
        if repeats:
            self.log.warning(
                "%s was recreated (new UIDVALIDITY); %d message(s) were handed over before "
                "and are not delivered again.",
                claim.folder,
                len(repeats),
            )
        return Claim(
            claim.protocol,
            claim.folder,
            claim.uidvalidity,
            uids=tuple(uid for uid in claim.uids if uid not in repeats),
        )

    def _not_handed_over_elsewhere(self, claim: Claim, run_id: str, stores: Stores) -> Claim:
        deliveries = stores.asset_deliveries(claim.folder)
        ids = [str(uid) for uid in claim.uids] or list(claim.uidls)
        mine = set(deliveries.take(ids, claim.uidvalidity, run_id))
        skipped = len(ids) - len(mine)
        if skipped:
            self.log.info("%d message(s) were handed over by another run already.", skipped)
        return Claim(
            claim.protocol,
            claim.folder,
            claim.uidvalidity,
            uids=tuple(uid for uid in claim.uids if str(uid) in mine),
            uidls=tuple(uidl for uidl in claim.uidls if uidl in mine),
        )
