"""SharedPoll.wait: a wait without news ends quietly after its time, on every Python."""

from __future__ import annotations

import asyncio
import time
from typing import Any, cast

from airflow_provider_mail.triggers.shared_poll import SharedPoll, Waiter


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
