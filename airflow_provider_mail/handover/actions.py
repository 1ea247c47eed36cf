"""The ``after_receive`` values besides ``mark_seen``: ``leave_unread``, ``move``, ``delete``.

Each is an :class:`~.after.AfterReceive` of the engine (docs/handover.md, "After the
hand-over: leave_unread, move, delete"):

* On IMAP, the *take* changes nothing on the server: under a lock of the host, the UIDs
  not yet handed over are reserved and added to the *handed-over set* of the folder
  (:class:`HandedOverSet`, UID ranges in a Variable), which every *peek* excludes. So a
  message is handed over once whatever ``unseen_only`` says, and stays untouched until
  its move or delete.
* On POP3 (no flags), the take is the seen Variable, as for ``mark_seen``.
* ``move`` and ``delete`` cannot be undone: a hook's own ``receive`` does them right after
  the read (``immediate``); the sensor does them once its task instance succeeded
  (:func:`act`, from its success callback or when a later run settles the ledger).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from airflow_provider_mail.handover.after import MARK_SEEN, AfterReceive
from airflow_provider_mail.handover.mailbox import Mailbox, Poll, Reserve
from airflow_provider_mail.hooks import mailbox_actions
from airflow_provider_mail.keyvalue import PREFIX, KeyValueStore, update, variable_lock
from airflow_provider_mail.mail.state import Claim, folder_name
from airflow_provider_mail.mail.uid_ranges import (
    UidRanges,
    handed_over,
    pending_of,
    with_handed_over,
    without_handed_over,
    without_pending,
)


class HandedOverSet:
    """The UIDs handed over from one IMAP folder, per UIDVALIDITY, as UID ranges.

    Variable ``mail_provider/handed_over/<conn_id>/<login>@<host>:<port>/<folder>``:
    ``{"uidvalidity": 17, "uids": "1:500,502"}``, plus ``"pending"`` (UIDs an AssetWatcher
    trigger took whose event may not have gone out). Delete it to receive everything again.

    :param refresh_seconds: keep what :meth:`ranges` read for this long (an AssetWatcher
        trigger: its polls then cost no Variable read; every :meth:`take` reads afresh
        under the lock and refreshes it, so a stale copy can only make a poll find a
        message that the take then drops). ``None``: read on every call.
    """

    def __init__(
        self,
        store: KeyValueStore,
        *,
        conn_id: str,
        account: str,
        folder: str,
        refresh_seconds: float | None = None,
    ) -> None:
        self.store = store
        self.folder = folder
        self.key = f"{PREFIX}/handed_over/{conn_id}/{account}/{folder}"
        self.refresh_seconds = refresh_seconds
        self._known: tuple[float, Any] | None = None  # (monotonic time read, value)

    def ranges(self, uidvalidity: int | None) -> UidRanges:
        """The UIDs handed over while the folder had ``uidvalidity``."""
        return handed_over(self._value(), uidvalidity)

    def take(self, claim: Claim, reserve: Reserve | None, *, pending: bool = False) -> Claim:
        """Of ``claim``, the UIDs not handed over yet: reserved, then added to the set
        (``pending``: also as pending, in the same write).

        One read-modify-write under the Variable's host lock, so two pollers of this host
        never take the same UID.
        """
        with variable_lock(self.key):
            value = self.store.get(self.key)
            known = handed_over(value, claim.uidvalidity)
            owned = replace(claim, uids=tuple(known.without_present(claim.uids)))
            if owned.uids:
                if reserve is not None:
                    reserve(owned)
                value = with_handed_over(value, claim.uidvalidity, owned.uids, pending=pending)
                self.store.set(self.key, value)
        self._remember(value)
        return owned

    def give_back(self, claim: Claim) -> None:
        """The claim's UIDs were not handed over after all (a failed read)."""
        self._remember(
            update(
                self.store,
                self.key,
                lambda value: without_handed_over(value, claim.uidvalidity, claim.uids),
            )
        )

    def pending(self) -> Claim:
        """The UIDs taken with ``pending`` whose event may not have gone out (read afresh)."""
        value = self.store.get(self.key)
        self._remember(value)
        if not isinstance(value, dict):
            return Claim("imap", self.folder)
        uidvalidity = value.get("uidvalidity")
        uids = tuple(pending_of(value, uidvalidity))
        return Claim("imap", self.folder, uidvalidity, uids=uids)

    def release_pending(self, claim: Claim) -> None:
        """The event naming the claim went out: its UIDs are no longer pending."""
        if claim.uids:
            update(
                self.store,
                self.key,
                lambda value: without_pending(value, claim.uidvalidity, claim.uids),
            )

    def _value(self) -> Any:
        if self.refresh_seconds is None:
            return self.store.get(self.key)
        if self._known is None or time.monotonic() - self._known[0] >= self.refresh_seconds:
            self._remember(self.store.get(self.key))
        assert self._known is not None
        return self._known[1]

    def _remember(self, value: Any) -> None:
        if self.refresh_seconds is not None:
            self._known = (time.monotonic(), value)


@dataclass(frozen=True)
class Action:
    """``after_receive`` as the task's parameters say it: the value and ``move_to``."""

    name: str
    move_to: str | None = None

    @property
    def irreversible(self) -> bool:
        """Whether it must wait until the hand-over is durable (``move``, ``delete``)."""
        return self.name in ("move", "delete")


def act(mailbox: Mailbox, claim: Claim | None, action: Action) -> None:
    """Move or delete exactly the claim's messages (a no-op for the others).

    Repeating it is harmless: UIDs (or UIDLs) no longer in the folder are not touched,
    and a folder recreated since (another UIDVALIDITY) is left alone.
    """
    if not action.irreversible or not claim:
        return
    hook: Any = getattr(mailbox, "hook", None)
    if hook is None:
        raise TypeError(f"{type(mailbox).__name__} cannot move or delete messages")
    address = hook.settings.address
    with hook.translate_errors():
        if claim.protocol == "pop3":
            numbers = {uidl: number for number, uidl in hook.listing()}
            wanted = [numbers[uidl] for uidl in claim.uidls if uidl in numbers]
            mailbox_actions.pop3_delete(hook.client, wanted, address)
            hook.close()  # QUIT: the server removes what DELE marked
            return
        if hook.uidvalidity(claim.folder) != claim.uidvalidity:
            return
        if action.name == "move":
            assert action.move_to is not None
            mailbox_actions.move(hook.client, claim.uids, action.move_to, address)
        else:
            mailbox_actions.delete(hook.client, claim.uids, address)


def check_before_touching(mailbox: Mailbox, action: Action) -> None:
    """Refuse, before any message is touched, a ``move_to`` that does not exist or a
    server that cannot move or delete exactly (IMAP)."""
    hook: Any = getattr(mailbox, "hook", None)
    if hook is None or mailbox.protocol != "imap" or not action.irreversible:
        return
    address = hook.settings.address
    with hook.translate_errors():
        mailbox_actions.require_capabilities(hook.client, action.name, address)
        if action.move_to is not None:
            mailbox_actions.require_folder(hook.client, action.move_to, address)


class Remembered:
    """``leave_unread``, ``move`` and ``delete`` on IMAP: taken into the handed-over set.

    :param action: the value and its ``move_to``.
    :param sets: the handed-over set of a folder.
    :param immediate: move or delete right after the read (a hook's own ``receive``);
        otherwise the sensor does it once its success is recorded.
    """

    def __init__(
        self, action: Action, sets: Callable[[str], HandedOverSet], *, immediate: bool
    ) -> None:
        self.name = action.name
        self.action = action
        self.sets = sets
        self.immediate = immediate

    def peek(self, mailbox: Mailbox, poll: Poll) -> Claim:
        """The mailbox's search, without the UIDs handed over already."""
        return mailbox.peek(replace(poll, exclude=self.excluded))

    def excluded(self, folder: str, uidvalidity: int | None) -> UidRanges:
        """What a peek of ``folder`` must not find again."""
        return self.sets(folder).ranges(uidvalidity)

    def takes(self, unseen_only: bool) -> bool:
        """Always: the set is what keeps a message from being handed over twice."""
        return True

    def take(
        self, mailbox: Mailbox, claim: Claim, *, reserve: Reserve | None, pending: bool
    ) -> Claim:
        """Reserve and add to the handed-over set the UIDs not in it yet; ``pending``
        (an AssetWatcher's take) also records them as pending there, not on the server."""
        if not claim.uids:
            return claim
        return self.sets(claim.folder).take(claim, reserve, pending=pending)

    def find_pending(self, mailbox: Mailbox, folder: str | None) -> Claim:
        """What an AssetWatcher trigger took whose event may not have gone out."""
        return self.sets(folder_name(folder)).pending()

    def release_pending(self, mailbox: Mailbox, claim: Claim) -> None:
        """The event is out: the claim's UIDs are no longer pending."""
        self.sets(claim.folder).release_pending(claim)

    def give_back(self, mailbox: Mailbox, claim: Claim) -> bool:
        """Remove the claim's UIDs from the set again; whether that worked."""
        try:
            self.sets(claim.folder).give_back(claim)
        except Exception:
            return False
        return True

    def after_hand_over(self, mailbox: Mailbox, claim: Claim, *, taken: bool) -> None:
        """``move``/``delete`` now when ``immediate``; ``leave_unread``: nothing."""
        if self.immediate:
            act(mailbox, claim, self.action)


class Pop3Taken:
    """``leave_unread`` and ``delete`` on POP3: taken into the seen Variable, always.

    POP3 has no flags, so ``mark_seen`` already changes nothing on the server; what
    ``leave_unread`` adds is that every poll skips what was handed over, whatever
    ``unseen_only`` says. ``delete`` then ``DELE``s them.
    """

    def __init__(self, action: Action, *, immediate: bool) -> None:
        self.name = action.name
        self.action = action
        self.immediate = immediate

    def peek(self, mailbox: Mailbox, poll: Poll) -> Claim:
        """The seen ids excluded, as for ``unseen_only``."""
        return mailbox.peek(replace(poll, unseen_only=True))

    def takes(self, unseen_only: bool) -> bool:
        """Always."""
        return True

    def take(
        self, mailbox: Mailbox, claim: Claim, *, reserve: Reserve | None, pending: bool
    ) -> Claim:
        """Into the seen Variable, as ``mark_seen`` takes (``pending``: the pending
        Variable too)."""
        return MARK_SEEN.take(mailbox, claim, reserve=reserve, pending=pending)

    def find_pending(self, mailbox: Mailbox, folder: str | None) -> Claim:
        """The pending Variable, as for ``mark_seen``."""
        return MARK_SEEN.find_pending(mailbox, folder)

    def release_pending(self, mailbox: Mailbox, claim: Claim) -> None:
        """The pending Variable, as for ``mark_seen``."""
        MARK_SEEN.release_pending(mailbox, claim)

    def give_back(self, mailbox: Mailbox, claim: Claim) -> bool:
        """Out of the seen Variable again."""
        return MARK_SEEN.give_back(mailbox, claim)

    def after_hand_over(self, mailbox: Mailbox, claim: Claim, *, taken: bool) -> None:
        """``delete`` now when ``immediate``."""
        if self.immediate:
            act(mailbox, claim, self.action)


#: The default: what ``after_receive="mark_seen"`` means (no folder).
MARK_SEEN_ACTION = Action("mark_seen")


def after_receive(
    action: Action,
    protocol: str,
    sets: Callable[[str], HandedOverSet],
    *,
    immediate: bool,
) -> AfterReceive:
    """The engine's :class:`~.after.AfterReceive` for ``action`` on ``protocol``."""
    if action.name == MARK_SEEN.name:
        return MARK_SEEN
    if protocol == "pop3":
        return Pop3Taken(action, immediate=immediate)
    return Remembered(action, sets, immediate=immediate)
