"""SharedPoll.wait ends quietly after its time on every Python; SharedPolls keeps one
session per mailbox."""

from __future__ import annotations

import asyncio
import time
from typing import Any, cast

from airflow_provider_mail.triggers.shared_poll import SharedPoll, SharedPolls, Waiter


def _poll() -> SharedPoll:
    return SharedPoll(hook=cast(Any, None), connect=cast(Any, None), takes=True, max_emails=5)


def test_a_wait_without_news_returns_after_its_time() -> None:
    # On Python 3.10 asyncio.wait_for raises asyncio.TimeoutError, which is not the builtin
    # TimeoutError there: every deferred sensor without mail failed after one delay.
    async def main() -> float:
        poll, waiter = _poll(), Waiter()
        started = time.monotonic()
        await poll.wait(waiter, 0.05)
        return time.monotonic() - started

    assert asyncio.run(main()) >= 0.05


def test_a_share_ends_the_wait_early() -> None:
    async def main() -> float:
        poll, waiter = _poll(), Waiter()
        started = time.monotonic()
        waiting = asyncio.ensure_future(poll.wait(waiter, 30))
        await asyncio.sleep(0)
        waiter.wake()
        await waiting
        return time.monotonic() - started

    assert asyncio.run(main()) < 30


def test_a_waiter_that_has_its_share_does_not_wait() -> None:
    async def main() -> float:
        poll, waiter = _poll(), Waiter()
        waiter.claim = cast(Any, "a share")
        started = time.monotonic()
        await poll.wait(waiter, 30)
        return time.monotonic() - started

    assert asyncio.run(main()) < 30


def test_triggers_joining_at_once_share_one_session_and_log_out_the_spare() -> None:
    """Two triggers of one mailbox both connect before either registered its poll: the
    later one joins the first's poll and its own session is closed, not left open."""

    class Session:
        def __init__(self) -> None:
            self.closed = False

        def close(self) -> None:
            self.closed = True

    sessions: list[Session] = []

    async def connect() -> Any:
        session = Session()
        sessions.append(session)
        await asyncio.sleep(0.01)  # both triggers are inside connect() now
        return session

    async def both() -> None:
        polls = SharedPolls.of_running_loop()
        (poll_a, waiter_a), (poll_b, waiter_b) = await asyncio.gather(
            polls.join("key", connect, takes=True, max_emails=5),
            polls.join("key", connect, takes=True, max_emails=5),
        )
        assert poll_a is poll_b
        assert [s.closed for s in sessions] == [False, True]
        await polls.leave("key", poll_a, waiter_a)
        assert not sessions[0].closed  # one trigger still waits on it
        await polls.leave("key", poll_b, waiter_b)
        assert sessions[0].closed

    asyncio.run(both())
