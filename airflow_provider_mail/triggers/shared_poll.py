"""One poll for every deferred sensor of a triggerer that watches the same mailbox.

Each deferred ``ReceiveEmailSensor`` has a trigger of its own, so a hundred waiting runs
of one DAG would keep a hundred sessions and search the same folder a hundred times every
``delay``. Triggers with the same connection, folder, ``unseen_only`` and ``max_emails``
instead share one session and one poll: a trigger whose turn it is reuses the answer
"nothing new" of a poll that started less than its own ``delay`` ago, so the server sees
about one search per ``delay`` and mail is still noticed within ``delay`` plus one poll of
arriving. A poll that finds mail wakes every waiting trigger at once and answers for
each that had not seen a newer poll yet, so all of them are told within a poll of the
first; a trigger that joins later polls for itself.

Only the sensor's peek (``mark_seen=False``) is shared: an AssetWatcher's trigger takes
what it emits, and Airflow already runs identical AssetWatcher triggers once.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
import weakref
from collections.abc import AsyncIterator, Callable, Hashable
from dataclasses import dataclass, field
from typing import Any

from airflow_provider_mail.hooks.base import ReceiveHook
from airflow_provider_mail.mail.state import Claim


@dataclass
class SharedPoll:
    """The session and the last poll of one (connection, folder, options)."""

    hook: ReceiveHook[Any]
    lock: asyncio.Lock
    members: int = 0
    started: float = -math.inf  # when the last poll started
    claim: Claim | None = None  # what it found
    news: asyncio.Event = field(default_factory=asyncio.Event)  # set when a poll finds mail

    async def poll(
        self, take: Callable[[ReceiveHook[Any]], Claim], fresh_for: float, known_since: float
    ) -> tuple[Claim, float]:
        """``take(hook)`` in a thread, unless the last poll answers for the caller.

        It does when it found mail and started after ``known_since`` (the start of the
        last poll whose answer the caller has, or when it joined), or when it found
        nothing and started less than ``fresh_for`` seconds ago. Returns the answer and
        when its poll started. A poll that finds mail wakes every member waiting in
        :meth:`wait`. A failed poll closes the shared session (the next poll opens a new
        one) and raises to the trigger whose poll it was.
        """
        async with self.lock:
            if self.claim is not None and (
                (self.claim and self.started > known_since)
                or (not self.claim and time.monotonic() - self.started < fresh_for)
            ):
                return self.claim, self.started
            started = time.monotonic()
            work = asyncio.get_running_loop().run_in_executor(None, self._take, take)
            try:
                claim = await asyncio.shield(work)
            except asyncio.CancelledError:
                # The session is free for the next trigger only when the thread is done,
                # however often the triggerer repeats the cancellation meanwhile.
                while not work.done():
                    with contextlib.suppress(asyncio.CancelledError):
                        await asyncio.wait([work])
                raise
            except BaseException:
                await asyncio.to_thread(self.hook.close)
                raise
            self.started, self.claim = started, claim
            if claim:
                self.news.set()
                self.news = asyncio.Event()  # members waiting hold the event just set
            return claim, started

    async def wait(self, seconds: float) -> None:
        """Until the next poll: ``seconds``, or until a member's poll finds mail."""
        # asyncio.TimeoutError, not TimeoutError: they are one class only from Python 3.11.
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self.news.wait(), seconds)

    def _take(self, take: Callable[[ReceiveHook[Any]], Claim]) -> Claim:
        try:
            return take(self.hook)
        finally:
            if not self.hook.session_sees_new_mail:
                self.hook.close()  # POP3 sees new mail only in a new session


_POLLS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[Hashable, SharedPoll]] = (
    weakref.WeakKeyDictionary()
)


@contextlib.asynccontextmanager
async def shared_poll(key: Hashable, hook: ReceiveHook[Any]) -> AsyncIterator[SharedPoll]:
    """Join the shared poll of ``key`` (``hook`` becomes its session if it is the first).

    The session is closed when the last trigger leaves.
    """
    polls = _POLLS.setdefault(asyncio.get_running_loop(), {})
    poll = polls.get(key)
    if poll is None:
        poll = polls[key] = SharedPoll(hook, asyncio.Lock())
    poll.members += 1
    try:
        yield poll
    finally:
        poll.members -= 1
        if poll.members == 0:
            del polls[key]
            # Shielded: a repeated cancellation must not skip the close or cut it short.
            await asyncio.shield(_close(poll))


async def _close(poll: SharedPoll) -> None:
    async with poll.lock:
        await asyncio.to_thread(poll.hook.close)
