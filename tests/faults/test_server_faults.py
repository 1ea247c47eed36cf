"""Server faults while a trigger waits: Dovecot restarted, Dovecot gone, password revoked."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_mail.exceptions import MailError
from airflow_provider_mail.sensors.receive import ReceiveEmailSensor
from airflow_provider_mail.triggers.receive import ReceiveEmailTrigger
from devtools.certs import Certificate
from devtools.connections import USERS, ConnFactory, receive_connection
from devtools.dovecot import Dovecot
from devtools.messages import numbered


@pytest.fixture
def own_dovecot(workdir: Path, certificate: Certificate) -> Iterator[Dovecot]:
    """A Dovecot of this test alone, so it can be stopped and started."""
    server = Dovecot(workdir / f"dovecot-faults-{time.monotonic_ns()}", certificate, dict(USERS))
    yield server.start()
    server.stop()


async def _events(trigger: ReceiveEmailTrigger, timeout: float) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []

    async def drain() -> None:
        async for event in trigger.run():
            events.append(dict(event.payload))

    await asyncio.wait_for(drain(), timeout=timeout)
    return events


def test_restarted_server_is_survived_with_one_log_line_per_failed_poll(
    mail_connection: ConnFactory,
    own_dovecot: Dovecot,
    certificate: Certificate,
    capfd: pytest.CaptureFixture[str],
) -> None:
    conn_id = receive_connection(mail_connection, own_dovecot, "imap", "ssl", certificate)
    trigger = ReceiveEmailTrigger(conn_id, unseen_only=True, delay=0.2, mark_seen=False)

    async def scenario() -> list[dict[str, Any]]:
        waiting = asyncio.create_task(_events(trigger, timeout=60))
        await asyncio.sleep(1.0)
        own_dovecot.stop()
        await asyncio.sleep(2.5)
        await asyncio.to_thread(own_dovecot.start)
        await asyncio.to_thread(own_dovecot.deliver, "info", numbered(2, "After restart"))
        return await waiting

    events = asyncio.run(scenario())
    assert [e["status"] for e in events] == ["success"]
    assert len(events[0]["uids"]) == 2
    # Airflow's structured logging writes to the console, not to pytest's log capture.
    output = capfd.readouterr().out
    failures = [line for line in output.splitlines() if "failed (" in line]
    assert failures, "the outage must be logged"
    assert all("retrying in" in line for line in failures)
    assert all(USERS["info"] not in line for line in failures)


def test_server_that_stays_down_fails_with_a_clear_error_after_max_failures(
    mail_connection: ConnFactory, own_dovecot: Dovecot, certificate: Certificate
) -> None:
    conn_id = receive_connection(mail_connection, own_dovecot, "imap", "ssl", certificate)
    own_dovecot.stop()
    trigger = ReceiveEmailTrigger(conn_id, delay=0.1, mark_seen=False, max_failures=2)
    [event] = asyncio.run(_events(trigger, timeout=30))
    assert event["status"] == "error"
    assert "was refused" in event["message"]
    assert "gave up after 2 failed polls" in event["message"]

    sensor = ReceiveEmailSensor(task_id="receive", conn_id=conn_id)
    with pytest.raises(MailError, match="gave up after 2 failed polls"):
        sensor.execute_complete({}, event)


def test_password_revoked_while_waiting_fails_at_once(
    mail_connection: ConnFactory, own_dovecot: Dovecot, certificate: Certificate
) -> None:
    conn_id = receive_connection(mail_connection, own_dovecot, "imap", "ssl", certificate)
    trigger = ReceiveEmailTrigger(conn_id, delay=0.2, mark_seen=False, max_failures=50)

    async def scenario() -> list[dict[str, Any]]:
        waiting = asyncio.create_task(_events(trigger, timeout=30))
        await asyncio.sleep(0.8)
        own_dovecot.add_user("info", "a-new-password")
        # The trigger keeps its session; the server drops it when it restarts.
        own_dovecot.stop()
        await asyncio.to_thread(own_dovecot.start)
        return await waiting

    started = time.monotonic()
    [event] = asyncio.run(scenario())
    assert event["status"] == "error"
    assert "rejected the user name 'info' or its password" in event["message"]
    assert time.monotonic() - started < 20, "an auth failure must not be retried for long"
