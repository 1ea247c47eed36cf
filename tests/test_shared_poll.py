"""Deferred sensors watching one mailbox share one session and one poll per delay."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from airflow_provider_mail.hooks.imap import ImapHook
from airflow_provider_mail.mail.state import Claim
from airflow_provider_mail.triggers.receive import ReceiveEmailTrigger
from devtools.certs import Certificate
from devtools.connections import ConnFactory, receive_connection
from devtools.dovecot import Dovecot
from devtools.messages import numbered

TRIGGERS = 20
DELAY = 0.5


class Counting:
    """Counts the real polls (``find_new``) and sessions (``_open``) of every ImapHook."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.polls = 0
        self.sessions = 0
        self._polled: tuple[asyncio.AbstractEventLoop, asyncio.Event] | None = None
        find_new, open_session = ImapHook.find_new, ImapHook._open

        def counted_find_new(hook: ImapHook, *args: Any, **kwargs: Any) -> Claim:
            self.polls += 1
            if self._polled is not None:
                loop, polled = self._polled
                loop.call_soon_threadsafe(polled.set)
            return find_new(hook, *args, **kwargs)

        def counted_open(hook: ImapHook, *args: Any) -> Any:
            self.sessions += 1
            return open_session(hook, *args)

        monkeypatch.setattr(ImapHook, "find_new", counted_find_new)
        monkeypatch.setattr(ImapHook, "_open", counted_open)

    async def until_polls(self, count: int) -> None:
        """Return once ``count`` polls have started (polls run in worker threads)."""
        polled = asyncio.Event()
        self._polled = (asyncio.get_running_loop(), polled)
        while self.polls < count:
            await asyncio.wait_for(polled.wait(), timeout=30)
            polled.clear()
        self._polled = None


async def _watch(
    triggers: list[ReceiveEmailTrigger], quiet_polls: int, deliver: Any, counting: Counting
) -> tuple[list[dict[str, Any]], int, float]:
    """Events of ``triggers`` (started over one delay) for mail delivered after quiet polls.

    Once every trigger runs, waits for ``quiet_polls`` more polls of the empty folder, then
    delivers. Also returns how many real polls ran from the delivery until every trigger
    had fired, and how long the quiet polls took.
    """
    runs = [trigger.run() for trigger in triggers]
    started: list[int] = []
    all_started = asyncio.Event()

    async def first_event(number: int, run: Any) -> Any:
        await asyncio.sleep(DELAY * number / len(runs))  # sensors defer at different times
        started.append(number)
        if len(started) == len(runs):
            all_started.set()
        return await run.__anext__()

    waiting = [asyncio.ensure_future(first_event(n, run)) for n, run in enumerate(runs)]
    await asyncio.wait_for(all_started.wait(), timeout=30)
    quiet_from = counting.polls
    await counting.until_polls(quiet_from + 1)
    quiet_started = time.monotonic()
    await counting.until_polls(quiet_from + 1 + quiet_polls)
    quiet_took = time.monotonic() - quiet_started
    assert not any(task.done() for task in waiting), "an event fired on an empty folder"
    polls_before = counting.polls
    await asyncio.to_thread(deliver)
    events = await asyncio.wait_for(asyncio.gather(*waiting), timeout=30)
    polls_after = counting.polls - polls_before
    for run in runs:
        await run.aclose()
    return [dict(event.payload) for event in events], polls_after, quiet_took


@pytest.fixture
def conn_id(mail_connection: ConnFactory, dovecot: Dovecot, certificate: Certificate) -> str:
    """An IMAP connection to an empty inbox."""
    dovecot.clear("info")
    return receive_connection(mail_connection, dovecot, "imap", "ssl", certificate)


@pytest.fixture
def counting(monkeypatch: pytest.MonkeyPatch) -> Counting:
    return Counting(monkeypatch)


def test_sensor_triggers_on_one_mailbox_share_a_session_and_a_poll_per_delay(
    conn_id: str, dovecot: Dovecot, counting: Counting
) -> None:
    triggers = [
        ReceiveEmailTrigger(conn_id, unseen_only=True, max_emails=5, delay=DELAY, mark_seen=False)
        for _ in range(TRIGGERS)
    ]
    quiet_polls = 4
    events, polls_after_delivery, quiet_took = asyncio.run(
        _watch(
            triggers, quiet_polls, lambda: dovecot.deliver("info", numbered(1, "Shared")), counting
        )
    )

    # Unshared, 20 triggers would poll 20 times per delay over their own 20 sessions: the
    # quiet polls would come 20 to a delay, not one (a busy machine only slows them more).
    assert counting.sessions == 1
    assert quiet_took >= (quiet_polls - 1) * DELAY * 0.9
    # Every waiting sensor is told of the new message by the one poll that found it (and
    # at most the quiet polls that ran while the message was being delivered).
    assert all(event["status"] == "success" and len(event["uids"]) == 1 for event in events)
    assert polls_after_delivery <= 3


def test_triggers_with_other_options_do_not_share(
    conn_id: str, dovecot: Dovecot, counting: Counting
) -> None:
    triggers = [
        ReceiveEmailTrigger(conn_id, unseen_only=True, max_emails=n, delay=DELAY, mark_seen=False)
        for n in (1, 2, 3)
    ]
    deliver = lambda: dovecot.deliver("info", numbered(1, "Own"))  # noqa: E731
    asyncio.run(_watch(triggers, 2, deliver, counting))
    assert counting.sessions == 3


def test_a_poll_that_finds_mail_wakes_every_waiting_trigger(
    conn_id: str, dovecot: Dovecot, counting: Counting
) -> None:
    """Sensors polling every minute learn of mail found by a sibling polling every 0.5 s.

    Without the wake-up they would sleep out their minute (past ``_watch``'s 30 s limit).
    """
    triggers = [
        ReceiveEmailTrigger(
            conn_id, unseen_only=True, max_emails=5, delay=60 if n else DELAY, mark_seen=False
        )
        for n in range(5)
    ]
    deliver = lambda: dovecot.deliver("info", numbered(1, "Woken"))  # noqa: E731
    events, _polls, _took = asyncio.run(_watch(triggers, 3, deliver, counting))
    assert all(event["status"] == "success" and len(event["uids"]) == 1 for event in events)
    assert counting.sessions == 1
