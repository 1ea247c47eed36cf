"""IMAP IDLE: new mail is noticed at once instead of after ``delay``."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from airflow_provider_mail.triggers.receive import ReceiveEmailTrigger
from devtools.certs import Certificate
from devtools.connections import ConnFactory, receive_connection
from devtools.dovecot import Dovecot
from devtools.messages import numbered


class _SaysWhenWaiting(ReceiveEmailTrigger):
    """The trigger, telling the test once a poll found nothing and it waits for news.

    Polling (alone or sharing a session): after the empty poll; IDLE: when it goes idle.
    """

    waiting: asyncio.Event
    loop: asyncio.AbstractEventLoop

    def _take(self, hook: Any, recover_pending: bool) -> Any:
        return self._polled(super()._take(hook, recover_pending))  # in a worker thread

    def _peek(self, hook: Any, max_emails: int) -> Any:
        return self._polled(super()._peek(hook, max_emails))  # a shared poll's

    def _polled(self, claim: Any) -> Any:
        if not claim and not self.use_idle:
            self.loop.call_soon_threadsafe(self.waiting.set)
        return claim

    async def _wait(self, hook: Any, deadline: float | None) -> None:
        if self.use_idle:
            self.waiting.set()
        await super()._wait(hook, deadline)


def _first_event_after_delivery(
    trigger: _SaysWhenWaiting, dovecot: Dovecot
) -> tuple[dict[str, Any], float]:
    async def scenario() -> tuple[dict[str, Any], float]:
        trigger.waiting = asyncio.Event()
        trigger.loop = asyncio.get_running_loop()
        events = trigger.run()
        waiting = asyncio.ensure_future(events.__anext__())
        await asyncio.wait_for(trigger.waiting.wait(), timeout=60)
        assert not waiting.done(), "an event fired on an empty inbox"
        delivered = time.monotonic()
        await asyncio.to_thread(dovecot.deliver, "info", numbered(1, "Pushed"))
        try:
            event = await asyncio.wait_for(waiting, timeout=60)
        finally:
            await events.aclose()
        return dict(event.payload), time.monotonic() - delivered

    return asyncio.run(scenario())


def test_idle_notices_new_mail_long_before_the_next_poll(
    mail_connection: ConnFactory, dovecot: Dovecot, certificate: Certificate
) -> None:
    dovecot.clear("info")
    conn_id = receive_connection(mail_connection, dovecot, "imap", "ssl", certificate)
    trigger = _SaysWhenWaiting(
        conn_id, unseen_only=True, delay=30, mark_seen=False, use_idle=True
    )
    payload, latency = _first_event_after_delivery(trigger, dovecot)
    assert payload["status"] == "success" and len(payload["uids"]) == 1
    # Behaviour, not speed: push arrives well inside the 30 s a poll would wait.
    assert latency < 10, f"IDLE took {latency:.1f} s; polling would take up to 30 s"


def test_without_idle_the_next_poll_finds_it(
    mail_connection: ConnFactory, dovecot: Dovecot, certificate: Certificate
) -> None:
    dovecot.clear("info")
    conn_id = receive_connection(mail_connection, dovecot, "imap", "ssl", certificate)
    trigger = _SaysWhenWaiting(conn_id, unseen_only=True, delay=4, mark_seen=False)
    payload, latency = _first_event_after_delivery(trigger, dovecot)
    assert payload["status"] == "success"
    assert latency >= 1.5, "without IDLE the mail waits for the next poll"


def test_idle_on_pop3_falls_back_to_polling(
    mail_connection: ConnFactory, dovecot: Dovecot, certificate: Certificate
) -> None:
    dovecot.clear("info")
    conn_id = receive_connection(mail_connection, dovecot, "pop3", "ssl", certificate)
    trigger = _SaysWhenWaiting(conn_id, delay=0.5, mark_seen=False, use_idle=True)
    payload, _latency = _first_event_after_delivery(trigger, dovecot)
    assert payload["status"] == "success" and len(payload["uidls"]) == 1
    assert trigger.use_idle is False
