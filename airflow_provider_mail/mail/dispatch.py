"""Which waiting triggers of a shared poll fire when it finds mail (pure logic).

Every deferred ``ReceiveEmailSensor`` that watches a mailbox waits in the same shared
poll (:mod:`airflow_provider_mail.triggers.shared_poll`). When the poll finds a message,
waking all of them starts one task per sensor, and with ``unseen_only`` (or
``after_receive`` ``leave_unread``/``move``/``delete``) all but one find the message taken
and defer again: five task starts for one message of a mailbox with five sensors.

So a poll whose hand-overs *take* their messages fires one waiter per ``max_emails``
new messages, each with its own share (oldest waiter and oldest messages first), at most
as many as wait; the others keep waiting. What a fired waiter was given is *leased* to it
for :data:`LEASE_SECONDS`: later polls do not give those messages to another waiter while
the fired sensor's task is on its way. When that task takes them, polls no longer find
them and the lease is dropped; when the task never takes them (its worker died, its
take failed), the lease runs out and the next poll fires the next waiter with them. So
no message is lost or left waiting for longer than one lease, and a waiter whose lease
ran out costs what it cost before (one task that finds the message taken). The hand-over
itself (exactly once) is still the task's, made by the engine; a lease only decides whom
a trigger wakes.

A poll whose hand-overs take nothing (``unseen_only=False`` with ``mark_seen``) fires
every waiter with the whole claim, as each of them delivers the messages anyway.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterator
from dataclasses import dataclass, field, replace

from airflow_provider_mail.mail.state import Claim

#: How long messages given to a fired waiter are not given to another one. Long enough
#: for the scheduler to queue the resumed task and a worker to start it on a busy
#: machine (tens of seconds; benchmarks/triggerer_scale.py), short enough that mail a dead
#: task never took reaches the next waiter within a minute.
LEASE_SECONDS = 60.0


def messages(claim: Claim) -> Iterator[Hashable]:
    """Each message of ``claim`` as a key that stays the same across polls."""
    for uid in claim.uids:
        yield _uid_key(claim, uid)
    for uidl in claim.uidls:
        yield _uidl_key(claim, uidl)


def _uid_key(claim: Claim, uid: int) -> Hashable:
    return (claim.folder, claim.uidvalidity, uid)


def _uidl_key(claim: Claim, uidl: str) -> Hashable:
    return (claim.folder, uidl)


def split(claim: Claim, size: int) -> list[Claim]:
    """``claim`` in claims of at most ``size`` messages, oldest first (``size < 1``: one)."""
    if not claim:
        return []
    if size < 1:
        return [claim]
    return [
        replace(claim, uids=claim.uids[start : start + size])
        for start in range(0, len(claim.uids), size)
    ] + [
        replace(claim, uids=(), uidls=claim.uidls[start : start + size])
        for start in range(0, len(claim.uidls), size)
    ]  # a claim holds either UIDs (IMAP) or UIDLs (POP3), never both


@dataclass
class Leases:
    """The messages given to fired waiters, each until when (monotonic seconds)."""

    # Read when the leases are made, not when this module is: a test shortens it.
    seconds: float = field(default_factory=lambda: LEASE_SECONDS)
    until: dict[Hashable, float] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.until)

    def expired(self, now: float) -> bool:
        """Whether every lease ran out (or there is none)."""
        return all(until <= now for until in self.until.values())

    def free(self, claim: Claim, now: float) -> Claim:
        """The messages of ``claim`` not leased at ``now``."""
        held = {key for key, key_until in self.until.items() if key_until > now}
        return replace(
            claim,
            uids=tuple(uid for uid in claim.uids if _uid_key(claim, uid) not in held),
            uidls=tuple(uidl for uidl in claim.uidls if _uidl_key(claim, uidl) not in held),
        )

    def lease(self, claim: Claim, now: float) -> None:
        """Give the messages of ``claim`` to a fired waiter from ``now`` on."""
        for key in messages(claim):
            self.until[key] = now + self.seconds

    def release(self, claim: Claim) -> None:
        """A waiter left without firing: its messages are free for the next poll."""
        for key in messages(claim):
            self.until.pop(key, None)

    def seen(self, claim: Claim, now: float, *, complete: bool) -> None:
        """A poll found ``claim``: forget expired leases and, when the poll found every
        message there is (``complete``), the leases of messages it no longer finds (their
        task took them)."""
        found = set(messages(claim)) if complete else None
        self.until = {
            key: key_until
            for key, key_until in self.until.items()
            if key_until > now and (found is None or key in found)
        }


def dispatch(
    claim: Claim,
    waiting: int,
    leases: Leases,
    now: float,
    *,
    takes: bool,
    max_emails: int,
) -> list[Claim]:
    """The claims to fire the ``waiting`` waiters with, the oldest waiter's first.

    ``takes``: whether a hand-over takes its messages (then each message goes to one
    waiter at a time, in shares of ``max_emails``, and is leased); otherwise every waiter
    gets all of ``claim``.
    """
    if not claim or waiting < 1:
        return []
    if not takes:
        return [claim] * waiting
    shares = split(leases.free(claim, now), max_emails)[:waiting]
    for share in shares:
        leases.lease(share, now)
    return shares


def poll_limit(max_emails: int, waiting: int, leased: int, *, takes: bool) -> int:
    """How many messages a shared poll looks for: a share per waiter, past those leased."""
    if max_emails < 1 or not takes:
        return max_emails
    return max_emails * max(waiting, 1) + leased
