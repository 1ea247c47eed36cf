"""One poll for every deferred sensor of a triggerer that watches the same mailbox.

Each deferred ``ReceiveEmailSensor`` has a trigger of its own, so a hundred waiting runs
of one DAG would keep a hundred sessions and search the same folder a hundred times every
``delay``. Triggers with the same connection, folder, ``unseen_only`` and ``max_emails``
instead share one session and one poll: a trigger whose turn it is reuses the answer
"nothing new" of a poll that started less than its own ``delay`` ago, so the server sees
about one search per ``delay`` and mail is still noticed within ``delay`` plus one poll of
arriving. An answer that names messages is reused only by triggers that were already
waiting when its poll started (it is as fresh as their own poll would be): the task that
takes the messages changes the mailbox, so later triggers poll afresh.

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
from dataclasses import dataclass
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

    async def poll(self, take: Callable[[ReceiveHook[Any]], Claim], fresh_for: float) -> Claim:
        """``take(hook)`` in a thread, unless the last poll answers for this one.

        It does when it started after this call (it saw everything this poll would), or
        when it found nothing and started less than ``fresh_for`` seconds ago. A failed
        poll closes the shared session (the next poll opens a new one) and raises to the
        trigger whose poll it was.
        """
        called = time.monotonic()
        async with self.lock:
            if self.claim is not None and (
                self.started >= called
                or (not self.claim and time.monotonic() - self.started < fresh_for)
            ):
                return self.claim
            started = time.monotonic()
            work = asyncio.get_running_loop().run_in_executor(None, self._take, take)
            try:
                claim = await asyncio.shield(work)
            except asyncio.CancelledError:
                # The session is free for the next trigger only when the thread is done.
                await asyncio.wait([work])
                raise
            except BaseException:
                await asyncio.to_thread(self.hook.close)
                raise
            self.started, self.claim = started, claim
            return claim

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
            async with poll.lock:
                await asyncio.to_thread(poll.hook.close)
