"""One poll for every deferred sensor of a triggerer that watches the same mailbox.

Each deferred ``ReceiveEmailSensor`` has a trigger of its own, so a hundred waiting runs
of one DAG would keep a hundred sessions and search the same folder a hundred times every
``delay``. Triggers with the same connection, folder, ``unseen_only``, ``max_emails``,
``search`` and ``after_receive`` (the share key, ``ReceiveEmailTrigger._share_key``)
instead share one session and one poll: a trigger whose turn it is reuses the answer of a
poll that started after it joined and less than its own ``delay`` ago, so the server sees
about one search per ``delay`` and mail is still noticed within ``delay`` plus one poll of
arriving.

Only the first trigger of a share key looks its connection up and opens the session; a
trigger that joins a running shared poll needs neither (no request to the triggerer's
supervisor at all). After an authentication failure the next poll opens a new session
with a connection looked up again (a rotated password).

A poll that finds mail fires only as many waiting triggers as it has shares of mail for
(:func:`airflow_provider_mail.mail.dispatch.dispatch`: one per ``max_emails`` messages
when the hand-over takes them), and wakes just those; the others keep waiting, and the
messages given to a fired trigger are leased to it so that later polls do not give them
to another one while its task starts. A trigger cancelled before it fired gives its
share back at once.

Only the sensor's peek (``mark_seen=False``) is shared: an AssetWatcher's trigger takes
what it emits, and Airflow already runs identical AssetWatcher triggers once.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
import weakref
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass, field
from typing import Any

from airflow_provider_mail.exceptions import MailAuthError
from airflow_provider_mail.hooks.base import ReceiveHook
from airflow_provider_mail.mail.dispatch import Leases, dispatch, poll_limit
from airflow_provider_mail.mail.state import Claim

#: ``take(hook, max_emails)``: one peek of the mailbox over ``hook`` (in a worker thread).
Take = Callable[[ReceiveHook[Any], int], Claim]
#: Looks the connection up (cached) and builds a hook for it.
Connect = Callable[[], Awaitable[ReceiveHook[Any]]]


@dataclass(eq=False)
class Waiter:
    """One trigger in a shared poll."""

    joined: float = field(default_factory=time.monotonic)
    claim: Claim | None = None  # what it fires with, once a poll gave it a share
    fired: bool = False  # its event went out: the share stays leased
    woken: asyncio.Future[None] | None = None  # set while it waits in SharedPoll.wait

    def wake(self) -> None:
        if self.woken is not None and not self.woken.done():
            self.woken.set_result(None)


@dataclass(eq=False)
class SharedPoll:
    """The session, the waiting triggers and the last poll of one share key."""

    hook: ReceiveHook[Any]
    connect: Connect
    takes: bool  # a hand-over takes its messages: one waiter per share (see dispatch)
    max_emails: int
    leases: Leases = field(default_factory=Leases)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    waiters: list[Waiter] = field(default_factory=list)
    started: float = -math.inf  # when the last poll started
    left_over: bool = False  # it found mail it gave to no waiter (a newcomer polls itself)
    reconnect: bool = False  # the session's sign-in failed: look the connection up again

    async def poll(self, waiter: Waiter, take: Take, fresh_for: float) -> Claim | None:
        """The claim ``waiter`` fires with, or ``None``: keep waiting.

        ``take(hook, max_emails)`` runs in a thread unless the last poll answers for the
        waiter: it does when it started after the waiter joined and less than
        ``fresh_for`` seconds ago, or found nothing and started less than ``fresh_for``
        ago. A poll gives its shares of mail to the waiters, oldest first, and wakes them
        in :meth:`wait`. A failed poll closes the session (the next poll opens a new one)
        and raises to the waiter whose poll it was.
        """
        async with self.lock:
            if waiter.claim is not None:
                return waiter.claim
            if time.monotonic() - self.started < fresh_for and (
                self.started > waiter.joined or not self.left_over
            ):
                return None
            if self.reconnect:
                self.hook = await self.connect()
                self.reconnect = False
            waiting = [other for other in self.waiters if other.claim is None]
            limit = poll_limit(self.max_emails, len(waiting), len(self.leases), takes=self.takes)
            started = time.monotonic()
            work = asyncio.get_running_loop().run_in_executor(None, self._take, take, limit)
            try:
                claim = await asyncio.shield(work)
            except asyncio.CancelledError:
                # The session is free for the next trigger only when the thread is done,
                # however often the triggerer repeats the cancellation meanwhile.
                while not work.done():
                    with contextlib.suppress(asyncio.CancelledError):
                        await asyncio.wait([work])
                raise
            except BaseException as err:
                self.reconnect = isinstance(err, MailAuthError)
                await asyncio.to_thread(self.hook.close)
                raise
            now = time.monotonic()
            self.leases.seen(claim, now, complete=limit < 1 or len(claim) < limit)
            shares = dispatch(
                claim, len(waiting), self.leases, now, takes=self.takes, max_emails=self.max_emails
            )
            for other, share in zip(waiting[: len(shares)], shares, strict=True):
                other.claim = share
                other.wake()
            self.started = started
            # Mail no waiter got (every waiter fired, or nothing is taken): a trigger that
            # joins later must poll for itself rather than reuse this answer.
            self.left_over = bool(claim) and (not self.takes or bool(self.leases.free(claim, now)))
            return waiter.claim

    async def wait(self, waiter: Waiter, seconds: float) -> None:
        """Until the waiter's next poll: ``seconds``, or until a poll gave it a share."""
        if waiter.claim is not None:
            return
        # A future and a timer rather than asyncio.wait_for: thousands of waiters each
        # wait once per delay, and wait_for costs a task and a cancellation every time.
        loop = asyncio.get_running_loop()
        waiter.woken = loop.create_future()
        timer = loop.call_later(seconds, waiter.wake)
        try:
            await waiter.woken
        finally:
            timer.cancel()
            waiter.woken = None

    def leave(self, waiter: Waiter) -> None:
        """``waiter``'s trigger ends; a share it did not fire with is free again."""
        self.waiters.remove(waiter)
        if waiter.claim is not None and not waiter.fired and self.takes:
            self.leases.release(waiter.claim)
            self.left_over = True  # the next poll must not reuse the last answer

    def _take(self, take: Take, limit: int) -> Claim:
        try:
            return take(self.hook, limit)
        finally:
            if not self.hook.session_sees_new_mail:
                self.hook.close()  # POP3 sees new mail only in a new session


@dataclass(eq=False)
class SharedPolls:
    """The shared polls of one event loop (a triggerer's), by share key.

    Get the running loop's with :meth:`of_running_loop`; a trigger joins the poll of its
    key (:meth:`join`) and leaves it when done (:meth:`leave`). Two methods, not a context
    manager: a trigger dropped after its first event (``dag.test()``) is finalized
    generator by generator when its loop shuts down, and one more generator here made
    that close race with itself ("an error occurred during closing of asynchronous
    generator").
    """

    polls: dict[Hashable, SharedPoll] = field(default_factory=dict)
    #: The leases of share keys whose last trigger fired and left: a sensor that defers
    #: again for the same mailbox (the next DAG run) is not fired with mail a task is
    #: about to take.
    kept: dict[Hashable, Leases] = field(default_factory=dict)

    @classmethod
    def of_running_loop(cls) -> SharedPolls:
        """The shared polls of the running event loop (made on first use)."""
        return _BY_LOOP.setdefault(asyncio.get_running_loop(), cls())

    async def join(
        self, key: Hashable, connect: Connect, *, takes: bool, max_emails: int
    ) -> tuple[SharedPoll, Waiter]:
        """Join the shared poll of ``key`` as a new waiter; :meth:`leave` when done.

        The first trigger of ``key`` builds its session with ``connect()`` (which may
        raise a MailError); the others join without it.
        """
        poll = self.polls.get(key)
        if poll is None:
            hook = await connect()
            poll = self.polls.get(key)  # another trigger of the key may have won meanwhile
            if poll is None:
                leases = self.kept.pop(key, None) or Leases()
                poll = SharedPoll(hook, connect, takes=takes, max_emails=max_emails, leases=leases)
                self.polls[key] = poll
            else:  # one session per mailbox: the spare one is logged out
                await asyncio.to_thread(hook.close)
        waiter = Waiter()
        poll.waiters.append(waiter)
        return poll, waiter

    async def leave(self, key: Hashable, poll: SharedPoll, waiter: Waiter) -> None:
        """Leave the shared poll of ``key``: the session is closed, and the leases kept
        for their remaining time, when the last trigger leaves."""
        poll.leave(waiter)
        if not poll.waiters:
            del self.polls[key]
            now = time.monotonic()
            for stale in [k for k, leases in self.kept.items() if leases.expired(now)]:
                del self.kept[stale]
            if not poll.leases.expired(now):
                self.kept[key] = poll.leases
            # Shielded: a repeated cancellation must not skip the close or cut it short.
            await asyncio.shield(_close(poll))


_BY_LOOP: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, SharedPolls] = (
    weakref.WeakKeyDictionary()
)


async def _close(poll: SharedPoll) -> None:
    async with poll.lock:
        await asyncio.to_thread(poll.hook.close)
