"""SharedPoll.wait: a wait without news ends quietly after its time, on every Python."""

from __future__ import annotations

import asyncio
import time
from typing import Any, cast

from airflow_provider_mail.triggers.shared_poll import SharedPoll


def test_a_wait_without_news_returns_after_its_time() -> None:
    # On Python 3.10 asyncio.wait_for raises asyncio.TimeoutError, which is not the builtin
    # TimeoutError there: every deferred sensor without mail failed after one delay.
    async def main() -> float:
        poll = SharedPoll(hook=cast(Any, None), lock=asyncio.Lock())
        started = time.monotonic()
        await poll.wait(0.05)
        return time.monotonic() - started

    assert asyncio.run(main()) >= 0.05


def test_news_ends_the_wait_early() -> None:
    async def main() -> float:
        poll = SharedPoll(hook=cast(Any, None), lock=asyncio.Lock())
        started = time.monotonic()
        waiter = asyncio.ensure_future(poll.wait(30))
        await asyncio.sleep(0)
        poll.news.set()
        await waiter
        return time.monotonic() - started

    assert asyncio.run(main()) < 30
