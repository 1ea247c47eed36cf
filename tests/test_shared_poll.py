"""Deferred sensors watching one mailbox share one session, one poll per delay and one
connection lookup; a message resumes one of them, not all."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from airflow_provider_mail.hooks.imap import ImapHook
from airflow_provider_mail.mail import dispatch
from airflow_provider_mail.mail.state import Claim
from airflow_provider_mail.triggers.connection_cache import connection_cache
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


class Watch:
    """Runs triggers in one event loop (a triggerer) and collects their first events."""

    def __init__(self, counting: Counting) -> None:
        self.counting = counting
        self.runs: list[Any] = []
        self.events: list[asyncio.Future[Any]] = []

    async def start(self, triggers: list[ReceiveEmailTrigger], spread: float = DELAY) -> None:
        """Start ``triggers`` over ``spread`` seconds (sensors defer at different times)
        and return once every one has polled or joined a poll, and one more poll ran."""
        for trigger in triggers:
            run = trigger.run()
            self.runs.append(run)
            self.events.append(asyncio.ensure_future(run.__anext__()))
            await asyncio.sleep(spread / len(triggers))
        await self.counting.until_polls(self.counting.polls + 1)

    def fired(self) -> list[dict[str, Any]]:
        done = [event for event in self.events if event.done() and not event.cancelled()]
        return [dict(event.result().payload) for event in done]

    async def until_fired(self, count: int) -> list[dict[str, Any]]:
        """Wait (at most 30 s, a failure) until ``count`` triggers fired."""
        while len(self.fired()) < count:
            await asyncio.wait_for(
                asyncio.wait(
                    [e for e in self.events if not e.done()], return_when="FIRST_COMPLETED"
                ),
                timeout=30,
            )
        return self.fired()

    async def polls(self, count: int) -> None:
        await self.counting.until_polls(self.counting.polls + count)

    async def close(self) -> None:
        for event in self.events:
            event.cancel()
        await asyncio.gather(*self.events, return_exceptions=True)
        for run in self.runs:
            await run.aclose()


@pytest.fixture
def conn_id(mail_connection: ConnFactory, dovecot: Dovecot, certificate: Certificate) -> str:
    """An IMAP connection to an empty inbox."""
    dovecot.clear("info")
    return receive_connection(mail_connection, dovecot, "imap", "ssl", certificate)


@pytest.fixture
def counting(monkeypatch: pytest.MonkeyPatch) -> Counting:
    return Counting(monkeypatch)


def sensor_triggers(conn_id: str, count: int, **options: Any) -> list[ReceiveEmailTrigger]:
    settings: dict[str, Any] = {"unseen_only": True, "max_emails": 5, "delay": DELAY}
    settings.update(options)
    return [ReceiveEmailTrigger(conn_id, mark_seen=False, **settings) for _ in range(count)]


def test_sensors_on_one_mailbox_share_a_session_a_poll_per_delay_and_one_lookup(
    conn_id: str, dovecot: Dovecot, counting: Counting
) -> None:
    quiet_polls = 4

    async def main() -> tuple[int, float, list[dict[str, Any]], int, int]:
        watch = Watch(counting)
        await watch.start(sensor_triggers(conn_id, TRIGGERS))
        quiet_started = time.monotonic()
        await watch.polls(quiet_polls)
        quiet_took = time.monotonic() - quiet_started
        assert not watch.fired(), "an event fired on an empty folder"
        await asyncio.to_thread(dovecot.deliver, "info", numbered(1, "Shared"))
        first = await watch.until_fired(1)
        # Several more polls find the same message (no task takes it here): it stays
        # leased to the trigger that fired, so no other trigger is resumed for it.
        await watch.polls(3)
        after_lease = len(watch.fired())
        await asyncio.to_thread(dovecot.deliver, "info", numbered(2, "Second")[1:])
        fired = await watch.until_fired(2)
        await watch.close()
        return connection_cache().lookups, quiet_took, first, after_lease, len(fired)

    lookups, quiet_took, first, after_lease, fired = asyncio.run(main())
    # Unshared, 20 triggers would look the connection up 20 times (3 requests each to a
    # triggerer's supervisor), open 20 sessions and poll 20 times per delay.
    assert lookups == 1
    assert counting.sessions == 1
    assert quiet_took >= (quiet_polls - 1) * DELAY * 0.9
    # One message resumes one sensor, not all twenty.
    assert [len(event["uids"]) for event in first] == [1]
    assert after_lease == 1
    # The next message resumes the next sensor, with only the new message.
    assert fired == 2


def test_mail_a_resumed_task_never_took_goes_to_the_next_sensor_after_the_lease(
    conn_id: str, dovecot: Dovecot, counting: Counting, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fired sensor's worker died before its take: the message is not lost."""
    monkeypatch.setattr(dispatch, "LEASE_SECONDS", 4 * DELAY)

    async def main() -> list[dict[str, Any]]:
        watch = Watch(counting)
        await watch.start(sensor_triggers(conn_id, 3))
        await asyncio.to_thread(dovecot.deliver, "info", numbered(1, "Orphan"))
        await watch.until_fired(1)
        fired = await watch.until_fired(2)  # the lease ran out, the message is still there
        await watch.close()
        return fired

    first, second = asyncio.run(main())
    assert first["uids"] == second["uids"]


def test_n_messages_resume_one_sensor_per_share_each_with_its_own(
    conn_id: str, dovecot: Dovecot, counting: Counting
) -> None:
    """Sensors polling every minute are woken by the poll of a sibling polling every 0.5 s
    (without the wake-up they would sleep out their minute, past the 30 s limit)."""

    async def main() -> list[dict[str, Any]]:
        watch = Watch(counting)
        # The oldest waiters get the shares: here the four that poll every minute.
        triggers = sensor_triggers(conn_id, 4, max_emails=2, delay=60)
        triggers += sensor_triggers(conn_id, 1, max_emails=2)
        await watch.start(triggers)
        await asyncio.to_thread(dovecot.deliver, "info", numbered(5, "Backlog"))
        await watch.until_fired(3)
        await watch.polls(2)
        fired = watch.fired()
        await watch.close()
        return fired

    fired = asyncio.run(main())
    shares = sorted(tuple(event["uids"]) for event in fired)
    assert [len(share) for share in shares] == [2, 2, 1]
    assert len({uid for share in shares for uid in share}) == 5
    assert counting.sessions == 1


def test_sensors_that_take_nothing_are_all_resumed(
    conn_id: str, dovecot: Dovecot, counting: Counting
) -> None:
    """unseen_only=False with mark_seen: every sensor delivers the folder anyway."""

    async def main() -> list[dict[str, Any]]:
        watch = Watch(counting)
        await watch.start(sensor_triggers(conn_id, 3, unseen_only=False, delay=60), spread=0)
        fired = await watch.until_fired(3)
        await watch.close()
        return fired

    dovecot.deliver("info", numbered(1, "Everyone"))
    assert [len(event["uids"]) for event in asyncio.run(main())] == [1, 1, 1]


def test_triggers_with_other_options_do_not_share(
    conn_id: str, dovecot: Dovecot, counting: Counting
) -> None:
    async def main() -> list[dict[str, Any]]:
        watch = Watch(counting)
        await watch.start([t for n in (1, 2, 3) for t in sensor_triggers(conn_id, 1, max_emails=n)])
        await asyncio.to_thread(dovecot.deliver, "info", numbered(1, "Own"))
        fired = await watch.until_fired(3)
        await watch.close()
        return fired

    # Each share key fires for the message; only one of their tasks will take it.
    assert len(asyncio.run(main())) == 3
    assert counting.sessions == 3


def test_a_rotated_password_is_read_again_after_an_authentication_failure(
    mail_connection: ConnFactory,
    dovecot: Dovecot,
    certificate: Certificate,
    counting: Counting,
) -> None:
    def define(password: str) -> str:
        return receive_connection(
            mail_connection, dovecot, "imap", "ssl", certificate, password=password
        )

    async def main() -> tuple[dict[str, Any], dict[str, Any], int]:
        conn_id = define("not-the-password")
        stale = ReceiveEmailTrigger(conn_id, unseen_only=True, delay=DELAY, mark_seen=False)
        failed = await stale.run().__anext__()
        define(dovecot.users["info"])  # the password is rotated in the secrets backend
        fresh = ReceiveEmailTrigger(conn_id, unseen_only=True, delay=DELAY, mark_seen=False)
        found = await asyncio.wait_for(fresh.run().__anext__(), timeout=30)
        return dict(failed.payload), dict(found.payload), connection_cache().lookups

    dovecot.clear("info")
    dovecot.deliver("info", numbered(1, "Rotated"))
    failed, found, lookups = asyncio.run(main())
    assert failed["error"] == "MailAuthError"
    assert found["status"] == "success"
    assert lookups == 2


def test_the_password_of_a_cached_connection_is_masked(
    conn_id: str, dovecot: Dovecot, counting: Counting
) -> None:
    from airflow.sdk._shared.secrets_masker import redact

    async def main() -> None:
        watch = Watch(counting)
        await watch.start(sensor_triggers(conn_id, 3))
        await watch.close()

    asyncio.run(main())
    password = dovecot.users["info"]
    assert redact(f"login {password}") == "login ***"
